"""``tickwire run`` / ``make run``: the main job, a full simulated trading session.

It generates a day of realistic order flow (``tickwire.gen``), plays it through the exchange
and the engine with a progress bar, and writes into the output directory: the command file,
the feed pcap, the execution reports, ``summary.json`` and ``session.png`` (depth at the close
per symbol and the trade price through the day).
"""

import json
import logging
from pathlib import Path

from .commands import write_commands
from .engine import open_engine
from .gen import generate
from .progress import progress
from .session import TradingSession, atomic_output

__all__ = ["run_main_job", "print_summary"]

log = logging.getLogger("tickwire.run")


def run_main_job(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    show = not args.quiet
    rows = generate(args.orders, seed=args.seed, symbols=args.symbols, firms=args.firms,
                    show_progress=show)
    write_commands(out / "commands.csv", rows)
    engine = open_engine(args.engine)
    trades = {}
    with atomic_output(out / "feed.pcap") as pcap_file, \
            atomic_output(out / "reports.jsonl", "w") as reports_file:
        session = TradingSession(engine, pcap_file, reports_file)
        session.exchange.listeners.append(_trade_recorder(session, trades))
        for row in progress(rows, f"session on {args.engine}", "cmd", enabled=show):
            session.play(row)
        session.close()
    engine.close()
    summary = session.summary()
    summary["engine"] = args.engine
    summary["seed"] = args.seed
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _plot(session, trades, out / "session.png")
    print_summary(summary, print if show else log.info)
    log.info("wrote %s/{commands.csv,feed.pcap,reports.jsonl,summary.json,session.png}", out)
    return 0


def _trade_recorder(session, trades):
    from .protocol.link import EventKind

    def record(events):
        for ev in events:
            if ev.kind == EventKind.EXECUTE:
                tick = session.exchange.by_locate[ev.symbol].tick
                trades.setdefault(ev.symbol, []).append((ev.timestamp, ev.price * tick))
    return record


def print_summary(s, echo=print):
    echo(f"commands {s['commands']:,}  orders {s['orders']:,}  accepted {s['accepted']:,}  "
         f"trades {s['trades']:,}  volume {s['volume']:,}  replaced {s['replaced']:,}  "
         f"halts {s['halts']}")
    echo(f"feed: {s['feed']['messages']:,} ITCH messages in {s['feed']['packets']:,} "
         "MoldUDP64 packets")
    if s["rejects"]:
        echo("rejects: " + ", ".join(f"{k} {v:,}" for k, v in s["rejects"].items()))
    if s["cancels"]:
        echo("cancels: " + ", ".join(f"{k} {v:,}" for k, v in s["cancels"].items()))
    echo("top of book at the close:")
    for name, top in s["top_of_book_at_close"].items():
        bid = f"{top['bid']['shares']:>6} @ {top['bid']['price']}" if top["bid"] else "    --"
        ask = f"{top['ask']['price']} x {top['ask']['shares']:<6}" if top["ask"] else "--"
        echo(f"  {name:<8} bid {bid:>20}   ask {ask:<20} last {top['last'] or '--':>10}  "
             f"volume {top['volume']:,}{'  HALTED' if top['halted'] else ''}")


def _plot(session, trades, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    symbols = list(session.exchange.symbols.values())
    if not symbols:
        return
    fig, axes = plt.subplots(2, len(symbols), figsize=(4.5 * len(symbols), 7), squeeze=False)
    for i, info in enumerate(symbols):
        ax = axes[0][i]
        for side, colour in (("B", "tab:green"), ("S", "tab:red")):
            levels = session.depth_at_close.get((info.locate, side), [])
            if levels:
                ax.barh([p / 10000 for p, *_ in levels], [q for _, q, _ in levels],
                        height=info.tick / 10000 * 0.8, color=colour,
                        label="bids" if side == "B" else "asks")
        ax.set_title(f"{info.name}: depth at the close")
        ax.set_xlabel("shares (round lots)")
        ax.set_ylabel("price $")
        ax.legend(loc="best", fontsize="small")
        ax = axes[1][i]
        points = trades.get(info.locate, [])
        if points:
            ax.plot([t / 3.6e12 for t, _ in points], [p / 10000 for _, p in points],
                    lw=0.6, color="tab:blue")
            ax.xaxis.set_major_formatter(
                lambda x, _: f"{int(x):02d}:{int(round(x % 1 * 60)) % 60:02d}")
        ax.set_title(f"{info.name}: trades")
        ax.set_xlabel("time of day")
        ax.set_ylabel("price $")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

