"""The summary table printed (and saved as ``summary.json``) after a preparation run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class OutputSummary:
    path: str
    rows: int = 0
    sources: Counter = field(default_factory=Counter)
    image_rows: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> rows dropped on the way to this file

    def as_dict(self) -> dict:
        return {"path": self.path, "rows": self.rows, "data_sources": dict(self.sources),
                "image_rows": self.image_rows, "dropped": dict(self.dropped)}


def table(summaries: list[OutputSummary]) -> str:
    """One block per output file: rows, data sources, image rows, dropped rows by reason."""
    labels = [f"data_source {k}" for s in summaries for k in s.sources] + [f"dropped: {k}" for s in summaries
                                                                          for k in s.dropped]
    w = max([len(label) for label in labels] + [12]) + 2
    lines = []
    for s in summaries:
        lines.append(f"{s.path}")
        lines.append(f"  {'rows':<{w}}{s.rows:>10,}")
        lines.append(f"  {'image rows':<{w}}{s.image_rows:>10,}")
        for source, n in sorted(s.sources.items()):
            lines.append(f"  {'data_source ' + source:<{w}}{n:>10,}")
        if s.dropped:
            for reason, n in s.dropped.most_common():
                lines.append(f"  {'dropped: ' + reason:<{w}}{n:>10,}")
        else:
            lines.append(f"  {'dropped':<{w}}{0:>10,}")
    return "\n".join(lines)
