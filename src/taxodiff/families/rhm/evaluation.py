"""An RHM evaluation: validity of the generated sequences at every level, copies of training sequences, how
the generated classes and rules are spread, and the training loss by diffusion time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SequenceEvaluation:
    data: dict[str, Any]

    def to_row(self) -> dict[str, Any]:
        r = self.data
        levels = r["rules"].get("levels", [])
        return {
            "validity": r["validity"]["sequences"],
            "subtree_validity": r["validity"]["subtrees"],
            "copies": r["memorisation"]["copies"],
            "distinct": r["memorisation"]["distinct"],
            "class_kl": r["rules"].get("class_kl"),
            "rule_kl": [lv["rule_kl"] for lv in levels],
            "rule_coverage": [lv["rule_coverage"] for lv in levels],
            "loss_train": r["loss_by_time"]["train"],
            "loss_test": r["loss_by_time"]["test"],
            "n": r["n"],
        }

    def describe(self) -> str:
        r = self.data
        v = r["validity"]
        levels = "  ".join(f"l{k} {x:.3f}" for k, x in enumerate(v["sequences"], start=1))
        chance = v["chance_sequences"][-1]
        return (
            f"{r['model']} {r['tag']} (step {r['checkpoint_step']}): valid {levels} (chance whole {chance:.1e})"
            f"  copies {r['memorisation']['copies']:.3f}  distinct {r['memorisation']['distinct']:.3f}"
        )
