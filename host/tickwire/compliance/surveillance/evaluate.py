"""Precision and recall of the detectors against a scenario's labels.

An alert matches a label of its type, firm and symbol whose time is within ``tolerance_ns``
of the alert's (order-to-trade labels and alerts cover the day: firm and symbol suffice); each
label matches at most one alert.
"""

from tickwire.compliance.surveillance.detectors import ALERT_TYPES

__all__ = ["score"]


def score(alerts, labels, tolerance_ns=20_000_000):
    """{type: {"tp", "alerts", "labels", "precision", "recall"}}."""
    out = {}
    for kind in ALERT_TYPES:
        mine = [a for a in alerts if a.type == kind]
        truth = [label for label in labels if label.type == kind]
        free = list(truth)
        tp = 0
        for a in mine:
            for label in free:
                if (label.firm == a.firm and label.symbol == a.symbol and
                        (kind == "order_to_trade" or abs(label.time - a.time) <= tolerance_ns)):
                    free.remove(label)
                    tp += 1
                    break
        out[kind] = {"tp": tp, "alerts": len(mine), "labels": len(truth),
                     "precision": tp / len(mine) if mine else (1.0 if not truth else 0.0),
                     "recall": tp / len(truth) if truth else 1.0}
    return out
