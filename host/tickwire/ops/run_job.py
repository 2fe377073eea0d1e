"""``tickwire run`` over the network: a generated day played by simulated firms through the
gateway, on loopback TCP.

:func:`run_session` starts a :class:`~tickwire.ops.serve.Venue` (engine, WAL with group commit,
risk, sequencer, gateway), connects one OUCH client per firm (each its own account), and plays
the rows of :func:`tickwire.gen.generate` (a market-open burst, then a steadier flow) in
order, each order request sent by its firm's client; halts and resumes go through the
operator's path in the venue's process, after every request before them is answered.

The load is offered at a stated ``rate`` (requests/s, open loop): request ``k`` is due at
``k / rate`` after the start and sent then, whatever is still unanswered, and its latency is
measured from that *intended* send time to its first answer (Accepted, Replaced, Canceled,
Rejected, Cancel Reject), so a stalled venue is charged for every request it held up
(coordinated omission corrected). ``rate=0`` plays the day closed loop instead, each client
keeping at most ``window`` requests unanswered, latency from the actual send. The firms run in a
process of their own (:mod:`tickwire.ops.firms`), so the latency is the venue's as clients in
another process see it; the venue's *saturation* throughput is measured apart, on a scratch
venue loaded by a generator in its own process (:func:`~tickwire.ops.venue_load.measure_venue`).

The result is a report dict, written as ``run.json`` with a plot
``run.png`` (latency histogram, depth at the close) into ``out_dir``, with the venue's stage
table (:mod:`tickwire.util.stages`: where each request's time went) as ``stages.csv`` and
``stages.png``.

The venue publishes its feed on loopback multicast (free ports), and a
:class:`~tickwire.marketdata.audience.FeedAudience` watches it from a process of its own
(:mod:`tickwire.ops.feed_audience`, off the venue's event loop): a subscriber with injected
loss recovering through re-requests, a late joiner through a snapshot (half-way through the
day), and WebSocket clients; the report's ``feed`` says what was published, lost and
recovered, and whether every subscriber's book equals the venue's at the close.
"""

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import sys

from tickwire.accounts.config import make_config, parse_config, write_config
from tickwire.clearing.calendar import trading_day
from tickwire.clearing.day import clear_and_settle, describe
from tickwire.clearing.opening import default_opening, opening_dict
from tickwire.compliance.job import format_compliance, run_compliance
from tickwire.core.money import format_price
from tickwire.core.requests import Halt, Resume
from tickwire.engine.registry import ENGINE_HELP
from tickwire.gateways.ouch.client import cancel_message, enter_message, replace_message
from tickwire.gateways.ouch.load import Phase
from tickwire.marketdata.audience import FeedAddresses, venue_view
from tickwire.marketdata.settings import FeedSettings
from tickwire.offline.gen import generate
from tickwire.ops.feed_audience import AudienceError, AudienceProcess
from tickwire.ops.firms import FirmsError, Operate, Send, play_day
from tickwire.ops.serve import Venue, add_trade_date_argument
from tickwire.ops.venue_load import measure_venue
from tickwire.protocol.link import Side, Tif
from tickwire.protocol.soupbintcp import unsequenced_data
from tickwire.util.loop import loop_name
from tickwire.util.progress import progress as progress_bar
from tickwire.util.stages import format_stage_table, plot_stages, write_stage_csv

__all__ = ["add_run_arguments", "histogram_summary", "latency_summary", "print_report",
           "run_main", "run_session"]

_STP_NAMES = ("newest", "oldest", "both")

#: The main job's feed: loopback multicast, every server on a free port.
RUN_FEED = FeedSettings(group="239.255.90.1", port=0, rerequest_port=0, snapshot_port=0,
                        ws_port=0, heartbeat=0.2)
DEFAULT_RATE = 1000
#: The saturation phase offers more than one venue process can answer.
SATURATION_OFFERED = 30000


def latency_summary(samples_ns):
    """{p50, p90, p99, p99.9, max, mean} in µs of a list of ns samples."""
    if not samples_ns:
        return {}
    s = sorted(samples_ns)

    def pct(p):
        return round(s[min(len(s) - 1, int(p / 100 * len(s)))] / 1000, 1)

    return {"count": len(s), "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99),
            "p99.9_us": pct(99.9), "max_us": round(s[-1] / 1000, 1),
            "mean_us": round(sum(s) / len(s) / 1000, 1)}


def histogram_summary(hist):
    """:func:`latency_summary`'s figures of an HDR histogram of ns samples."""
    count = hist.get_total_count()
    if not count:
        return {}

    def us(ns):
        return round(ns / 1000, 1)

    return {"count": count, "p50_us": us(hist.get_value_at_percentile(50)),
            "p90_us": us(hist.get_value_at_percentile(90)),
            "p99_us": us(hist.get_value_at_percentile(99)),
            "p99.9_us": us(hist.get_value_at_percentile(99.9)),
            "max_us": us(hist.get_max_value()), "mean_us": us(hist.get_mean_value())}


def _script(rows, firm_index):
    """The day's rows as the firms' script: each order request on its firm's connection, each
    halt and resume an operator action in the venue's process, in the rows' order."""
    script = []
    for row in rows:
        if row.action in ("halt", "resume"):
            script.append(Operate(row.action, row.symbol))
        elif row.action in ("new", "cancel", "replace"):
            script.append(_request(firm_index[row.firm], row))
    return script


def _request(firm, row):
    if row.action == "new":
        tif = 0 if row.tif in (Tif.IOC, Tif.FOK) else 99998
        min_qty = row.qty if row.tif == Tif.FOK else row.min_qty
        message = enter_message(row.token, "B" if row.side == Side.BUY else "S", row.qty,
                                row.symbol, row.price, tif=tif, min_qty=min_qty)
        return Send(firm, message[1:15], unsequenced_data(message))
    if row.action == "cancel":
        message = cancel_message(row.token, row.new_qty)
        return Send(firm, message[1:15], unsequenced_data(message))
    # answered under the replacement token, or by a Cancel Reject under the existing one
    message = replace_message(row.token, row.new_token, row.new_qty, row.new_price)
    return Send(firm, message[15:29], unsequenced_data(message), alias=message[1:15])


async def run_session(orders=20000, clients=8, seed=1, symbols=4, engine="model",
                      out_dir="build/run", progress=True, window=32, fsync="group", plot=True,
                      clearing=True, feed=True, trade_date=None, rate=DEFAULT_RATE,
                      saturation_seconds=1.0):
    """Play a generated day through the gateway; return the report dict.

    Parameters
    ----------
    orders : int
        Order requests (new, cancel, replace) to generate.
    clients : int
        Simulated firms, one account and one TCP connection each.
    seed, symbols : int
        Generator seed and number of symbols.
    engine : str
        Engine name (``model``).
    out_dir : str
        Where ``run.json``, ``run.png``, the WAL, the risk decision log and the feed pcap go.
    progress : bool
        Show a tqdm bar.
    window : int
        Unanswered requests allowed per client (closed loop only).
    rate : float
        Requests/s offered, open loop (0: closed loop, as fast as the windows allow).
    saturation_seconds : float
        Length of the separate saturation measurement (0: none).
    clearing : bool
        After the close, clear the day's journal and settle it on T+1 into
        ``out_dir/clearing`` (the firms' opening balances are in ``out_dir/venue.json``).
    feed : bool
        Publish the feed and run the :class:`FeedAudience` beside the firms.
    trade_date : str, optional
        The day's trade date (ISO), recorded in the journal at the open and cleared under;
        default today (UTC), or the next session if today is none.
    """
    os.makedirs(out_dir, exist_ok=True)
    rows = generate(orders, seed=seed, symbols=symbols, firms=clients)
    declared = {r.symbol: format_price(r.price) for r in rows if r.action == "symbol"}
    passwords = {f"F{i:02d}": secrets.token_hex(4) for i in range(clients)}
    venue_config = make_config(
        {f"c{i:02d}": {"firm": f"F{i:02d}", "password": passwords[f"F{i:02d}"],
                       "stp": _STP_NAMES[i % 3], "max_order_qty": 100_000,
                       "collar_pct": 25} for i in range(clients)},
        symbols=declared, n=2**12)
    venue_config["members"] = {firm: opening_dict(balance) for firm, balance in
                               default_opening(sorted(passwords), sorted(declared)).items()}
    config_path = os.path.join(out_dir, "venue.json")
    write_config(config_path, venue_config)
    cfg = parse_config(venue_config)
    wal_path = os.path.join(out_dir, "session.wal")
    for stale in (wal_path, os.path.join(out_dir, "decisions.jsonl")):
        if os.path.exists(stale):
            os.unlink(stale)
    venue = Venue(cfg, wal_path, engine, feed_pcap=os.path.join(out_dir, "feed.pcap"),
                  decision_log=os.path.join(out_dir, "decisions.jsonl"), fsync=fsync,
                  feed=RUN_FEED if feed else False,
                  trade_date=trade_date or trading_day(dt.datetime.now(dt.UTC).date()).isoformat())
    await venue.start()
    venue.sequencer.stages.reset()         # the day's requests, not the opening
    audience = await AudienceProcess.start(FeedAddresses.of(venue.marketdata), declared,
                                           seed) if feed else None
    seq = venue.sequencer
    try:
        day = await _play(venue, audience, rows, passwords, rate, window, progress)
    except (FirmsError, AudienceError, asyncio.CancelledError):   # or Ctrl-C
        if audience is not None:
            audience.kill()
        await venue.stop()
        raise
    sent, elapsed = day["requests"], day["elapsed_s"]
    await seq.drain()
    stages = seq.stages.rows()
    book_at_close = _depth(venue)
    top = venue.book.top_of_book(venue.sequencer.exchange.symbols)
    feed_report = None
    if audience is not None:
        feed_report = await audience.check(venue_view(venue.marketdata, venue.book, {
            name: info.locate for name, info in seq.exchange.symbols.items()}))
    await venue.close_day()
    await seq.drain()
    await asyncio.sleep(0.05)
    if audience is not None:
        await audience.close()
    await venue.stop()
    post_trade = None
    if clearing:
        post_trade = clear_and_settle(wal_path, config_path, os.path.join(out_dir, "clearing"),
                                      progress=progress)      # the journal's trade date
    saturation = await _saturation(saturation_seconds, fsync, engine)
    counts = seq.counts
    report = {
        "orders": sum(1 for r in rows if r.action == "new"),
        "requests": sent,
        "unanswered": day["unanswered"],
        "clients": clients,
        "symbols": symbols,
        "seed": seed,
        "trade_date": seq.trade_date,
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(sent / elapsed, 1) if elapsed else None,
        "commands": seq.exchange.seq,
        "wal": {"records": venue.wal.records, "fsyncs": venue.wal.fsyncs,
                "bytes": venue.wal.bytes},
        "accepted": counts["accepted"],
        "fills": counts["executed"] // 2,
        "replaced": counts["replaced"],
        "canceled": counts["canceled"],
        "rejects": dict(sorted(seq.rejects.items())),
        "risk_rejects": dict(sorted(venue.risk.rejects.items())),
        "latency": histogram_summary(day["latency"]),
        "load": {"mode": "open loop" if rate else "closed loop",
                 "offered_per_s": rate or None,
                 "achieved_per_s": round(day["answers"] / elapsed, 1) if elapsed else None,
                 "send_lag": histogram_summary(day["send_lag"]) if day["send_lag"] else {},
                 "event_loop": loop_name(),
                 "venue_pid": os.getpid(), "firms_pid": day["pid"],
                 "audience_pid": audience.pid if audience is not None else None},
        "saturation": saturation,
        "stages": stages,
        "top_of_book": top,
        "positions": {f"c{i:02d}": _exposure(venue.risk, f"c{i:02d}") for i in range(clients)},
        "feed_packets": venue.packets,
        "clearing": post_trade,
    }
    if feed_report is not None:
        report["feed"] = feed_report
    report["compliance"] = run_compliance(out_dir, wal_path, cfg, plot=plot)
    with open(os.path.join(out_dir, "run.json"), "w") as f:
        json.dump(report, f, indent=2)
    write_stage_csv(os.path.join(out_dir, "stages.csv"), stages)
    if plot:
        _plot(os.path.join(out_dir, "run.png"), day["latency"], book_at_close)
        plot_stages(os.path.join(out_dir, "stages.png"), stages,
                    f"order path by stage ({sent:,} requests)")
    return report


async def _play(venue, audience, rows, passwords, rate, window, progress):
    """The firms play ``rows`` from their own process; the audience's late joiner joins
    half-way through. Return :func:`~tickwire.ops.firms.play_day`'s result."""
    seq = venue.sequencer
    script = _script(rows, {f"F{i:02d}": i for i in range(len(passwords))})
    requests = sum(1 for step in script if type(step) is Send)
    bar = progress_bar(None, "run", "req", enabled=progress, total=requests)
    joining = None

    def on_progress(sent):
        nonlocal joining
        bar.update(sent - bar.n)
        if audience is not None and joining is None and sent >= requests // 2:
            joining = asyncio.create_task(
                audience.join_late(venue.marketdata.next_sequence))

    def operate(action, symbol):
        request = Halt if action == "halt" else Resume
        seq.submit_nowait(request(ts=seq.now(), symbol=symbol))

    logins = [(f"c{i:02d}", passwords[f"F{i:02d}"]) for i in range(len(passwords))]
    try:
        day = await play_day(venue.gateway.port, logins, script, rate, window, on_progress,
                             operate)
    except BaseException:
        if joining is not None:
            joining.cancel()
        raise
    finally:
        bar.close()
    if joining is not None:
        await joining
    return day


async def _saturation(seconds, fsync, engine):
    """The venue's sustained orders/s (a scratch venue, the load from another process)."""
    if not seconds:
        return None
    report = await measure_venue([Phase("saturation", SATURATION_OFFERED, seconds)],
                                 fsync=fsync, engine=engine)
    phase = report["saturation"]
    return {"orders_per_s": phase["answered_per_s"], "offered_per_s": phase["offered_per_s"],
            "seconds": seconds, "p50_us": phase["p50_us"], "p99_us": phase["p99_us"],
            "cpu_us_per_order": phase["cpu_us_per_order"]}


def _exposure(risk, account):
    """An account's exposure with its notionals in $ (exact decimal strings)."""
    exp = risk.exposure(account)
    return dict(exp, open=format_price(exp["open"]), executed=format_price(exp["executed"]))


def _depth(venue, levels=10):
    return {name: {"B": venue.book.levels(info.locate, "B", levels),
                   "S": venue.book.levels(info.locate, "S", levels)}
            for name, info in venue.sequencer.exchange.symbols.items()}


def _plot(path, latency, depth):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = max(1, len(depth))
    fig, axes = plt.subplots(1, 1 + n, figsize=(5 + 3.5 * n, 4))
    ax = axes[0]
    recorded = [(step.value_iterated_to, step.count_added_in_this_iter_step)
                for step in latency.get_recorded_iterator()]
    if recorded:
        us = np.array([value for value, _ in recorded]) / 1000
        bins = np.logspace(np.log10(max(us.min(), 1)), np.log10(us.max() + 1), 60)
        ax.hist(us, bins=bins, weights=[count for _, count in recorded])
        ax.set_xscale("log")
    ax.set_title("send → ack latency")
    ax.set_xlabel("µs")
    ax.set_ylabel("requests")
    for ax, (name, book) in zip(axes[1:], depth.items()):
        for side, color in (("B", "tab:green"), ("S", "tab:red")):
            levels = book[side]
            if levels:
                prices = [p / 10000 for p, _, _ in levels]
                cum = np.cumsum([q for _, q, _ in levels])
                ax.step(prices, cum, where="post", color=color, label="bids" if side == "B"
                        else "asks")
        ax.set_title(f"{name} depth at close")
        ax.set_xlabel("$")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_run_arguments(parser):
    """The ``tickwire run`` arguments."""
    parser.add_argument("--orders", type=int, default=20000,
                        help="order requests to generate (default 20000)")
    parser.add_argument("--clients", type=int, default=8,
                        help="simulated firms, one account and connection each (default 8)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--symbols", type=int, default=4, help="symbols traded (default 4)")
    parser.add_argument("--engine", default="model", help=ENGINE_HELP)
    parser.add_argument("--out", default="build/run", help="output directory (build/run)")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE,
                        help="requests/s offered, open loop: latency counts from each "
                             "request's intended send time (coordinated omission corrected); "
                             f"0 plays the day closed loop (default {DEFAULT_RATE})")
    parser.add_argument("--saturation-seconds", type=float, default=1.0,
                        help="offer the saturation load for this long, apart: a scratch venue "
                             f"gets {SATURATION_OFFERED:,} orders/s from a load generator in "
                             "its own process, and the orders answered per second until the "
                             "last answer is the throughput (0: skip; default 1)")
    parser.add_argument("--window", type=int, default=32,
                        help="unanswered requests allowed per client when --rate is 0 "
                             "(default 32)")
    parser.add_argument("--fsync", choices=("record", "group", "none"), default="group",
                        help="WAL fsync policy (default: group commit)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-clearing", action="store_true",
                        help="skip clearing and T+1 settlement after the close")
    parser.add_argument("--no-feed", action="store_true",
                        help="do not publish the feed nor run its subscribers")
    add_trade_date_argument(parser)
    return parser


def print_report(r, echo=print):
    """The run report as a few readable lines."""
    lat, load = r["latency"], r["load"]
    echo(f"{r['requests']:,} requests from {r['clients']} firms in {r['elapsed_s']:.1f} s "
         f"({r['requests_per_s']:,.0f}/s): {r['orders']:,} orders, {r['accepted']:,} accepted, "
         f"{r['fills']:,} fills, {r['replaced']:,} replaced, {r['canceled']:,} canceled, "
         f"{r['unanswered']} unanswered")
    audience = f"; the feed's subscribers in a process of their own (pid " \
               f"{load['audience_pid']})" if load.get("audience_pid") else ""
    processes = (f"event loop {load['event_loop']} in the venue's process (pid "
                 f"{load['venue_pid']}){audience}; the firms in a process of their own "
                 f"(pid {load['firms_pid']}), over loopback TCP")
    if load["offered_per_s"]:
        echo(f"load: {load['offered_per_s']:,.0f} requests/s offered (open loop), "
             f"{load['achieved_per_s']:,.0f}/s answered; {processes}")
        since = "intended send"
    else:
        echo(f"load: closed loop, {r['requests_per_s']:,.0f} requests/s achieved; {processes}")
        since = "send"
    if lat:
        echo(f"latency send → ack: p50 {lat['p50_us']:,.0f} µs, p99 {lat['p99_us']:,.0f} µs, "
             f"p99.9 {lat['p99.9_us']:,.0f} µs, max {lat['max_us']:,.0f} µs "
             f"(at that load, from each request's {since} time to its answer, as the firms' "
             "process saw it)")
    if load["send_lag"]:
        lag = load["send_lag"]
        echo(f"  of which the firms' own lateness (sent after the intended time): "
             f"p50 {lag['p50_us']:,.0f} µs, p99 {lag['p99_us']:,.0f} µs")
    sat = r["saturation"]
    if sat:
        echo(f"saturation: {sat['orders_per_s']:,.0f} orders/s sustained (measured apart: "
             f"{sat['offered_per_s']:,.0f}/s offered for {sat['seconds']:g} s to a scratch venue "
             f"by a load generator in its own process; {sat['cpu_us_per_order']:,.0f} µs of venue "
             "CPU per order)")
    echo("where the time went in the venue, by stage:")
    for line in format_stage_table(r["stages"]):
        echo("  " + line)
    rejects = {**r["rejects"], **{f"risk {k}": v for k, v in r["risk_rejects"].items()}}
    if rejects:
        echo("rejects: " + ", ".join(f"{k} {v:,}" for k, v in rejects.items()))
    echo(f"WAL: {r['wal']['records']:,} records, {r['wal']['fsyncs']:,} fsyncs; "
         f"feed: {r['feed_packets']:,} MoldUDP64 packets")
    if "feed" in r:
        print_feed_report(r["feed"], echo)
    if r.get("clearing"):
        for line in describe(r["clearing"]):
            echo(line)
    for line in format_compliance(r["compliance"]):
        echo(line)
    echo("top of book at the close:")
    for name, top in r["top_of_book"].items():
        bid = f"{top['bid']['shares']:>6} @ {top['bid']['price']}" if top["bid"] else "--"
        ask = f"{top['ask']['price']} x {top['ask']['shares']:<6}" if top["ask"] else "--"
        echo(f"  {name:<8} bid {bid:>20}   ask {ask:<20} last {top['last'] or '--':>10}"
             f"{'  HALTED' if top['halted'] else ''}")


def print_feed_report(f, echo=print):
    """The feed part of the run report."""
    echo(f"feed published: {f['messages']:,} messages in {f['packets']:,} multicast packets "
         f"(+{f['heartbeats']:,} heartbeats)")
    echo(f"lossy subscriber: {f['lost_packets']:,} packets ({f['lost_messages']:,} messages) "
         f"dropped on receipt, {f['recovered_messages']:,} messages recovered by "
         f"{f['rerequests']:,} re-requests ({f['retransmitted_packets']:,} packets resent)")
    for name, sub in f["subscribers"].items():
        joined = f", joined at sequence {sub['joined_at']:,}" if "joined_at" in sub else ""
        echo(f"  {name}: book {'equals' if sub['book_equal'] else 'DIFFERS FROM'} the "
             f"venue's at the close{joined}")
    echo(f"  {f['websocket_clients']} WebSocket clients: {f['websocket_updates']:,} updates, "
         f"L2 {'equals' if f['websocket_equal'] else 'DIFFERS FROM'} the venue's at the close")


def run_main(args):
    """``tickwire run`` entry: ``args`` from :func:`add_run_arguments`."""
    progress = not (args.no_progress or getattr(args, "quiet", False))
    try:
        report = asyncio.run(run_session(args.orders, args.clients, args.seed, args.symbols,
                                         args.engine, args.out, progress, args.window,
                                         args.fsync, clearing=not args.no_clearing,
                                         feed=not args.no_feed, trade_date=args.trade_date,
                                         rate=args.rate,
                                         saturation_seconds=args.saturation_seconds))
    except (FirmsError, AudienceError) as exc:
        print(f"tickwire run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tickwire run: interrupted (the firms' process is stopped)", file=sys.stderr)
        return 130
    if not getattr(args, "quiet", False):
        print_report(report)
        print(f"wrote {args.out}/run.json, run.png, stages.csv, stages.png, feed.pcap, "
              "session.wal, decisions.jsonl, venue.json, clearing/, audit/, alerts.jsonl, "
              "bestex.csv, bestex_orders.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(add_run_arguments(argparse.ArgumentParser(
        prog="python -m tickwire.run_job")).parse_args()))
