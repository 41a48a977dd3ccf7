"""PyKEEN side of the peer benchmark: one system (or the evaluator-only timing) in its own process.

Runs inside the PyKEEN virtual environment (``bench/peers/.venv``), so it imports neither ``hale_tf``
nor TensorFlow; the data comes as id TSV files written by ``run.py`` with the shared id mapping.

Usage (``run.py`` does this)::

    .venv/bin/python pykeen_runner.py SPEC.json RESULT.json

``SPEC.json`` holds ``mode`` (``train`` | ``evalbench``), the data directory, the entity/relation counts
and the recipe; ``RESULT.json`` receives everything measured.

Training is PyKEEN's own training loop (sLCWA or LCWA) with a training callback that keeps a pausable
wall clock: every ``validate_every_s`` training seconds it pauses the clock, evaluates the validation
split (filtered, both sides) and resumes; when the budget is spent it stops at the next batch boundary.
The best-validation weights are restored at the end (the same rule as hale-tf's ``restore_best``) and
the test split is evaluated outside the budget.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path
from typing import Any

import peers_common as common
import torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.losses import loss_resolver
from pykeen.models import model_resolver
from pykeen.optimizers import optimizer_resolver
from pykeen.training import TrainingCallback, training_loop_resolver
from pykeen.triples import CoreTriplesFactory
from pykeen.utils import set_random_seed

PYKEEN_METRIC = {"mrr": "inverse_harmonic_mean_rank", "mr": "arithmetic_mean_rank",
                 **{f"hits@{k}": f"hits_at_{k}" for k in common.HITS_AT}}


class BudgetExhausted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised from the training callback when the training clock has reached the budget."""


# ------------------------------------------------------------------------------------------ data
def load_factories(spec: dict[str, Any], inverse: bool) -> tuple[CoreTriplesFactory, dict[str, torch.Tensor]]:
    """The training factory and the id tensors of every split (shared id mapping from ``run.py``)."""
    data_dir = Path(spec["data_dir"])
    files = {"train": "train.tsv", "valid": "valid.tsv", "test": "test.tsv",
             "curve": spec.get("valid_file", "valid.tsv")}
    splits = {name: torch.as_tensor(common.read_id_triples(data_dir / file), dtype=torch.long)
              for name, file in files.items()}
    factory = CoreTriplesFactory.create(
        mapped_triples=splits["train"], num_entities=int(spec["num_entities"]),
        num_relations=int(spec["num_relations"]), create_inverse_triples=inverse,
    )
    return factory, splits


# ------------------------------------------------------------------------------------ evaluation
def metrics_of(result: Any) -> dict[str, dict[str, float]]:
    """``{tie_rule: {mrr, mr, hits@k}}`` of both sides from a PyKEEN ``RankBasedMetricResults``."""
    out: dict[str, dict[str, float]] = {}
    for rule in ("pessimistic", "realistic", "optimistic"):
        out[rule] = {ours: float(result.get_metric(f"both.{rule}.{theirs}")) for ours, theirs in PYKEEN_METRIC.items()}
    return out


class Evaluation:
    """Filtered both-sides rank evaluation of one split (filter: the whole train ∪ valid ∪ test)."""

    def __init__(self, splits: dict[str, torch.Tensor], batch_size: int) -> None:
        self.evaluator = RankBasedEvaluator(filtered=True)
        self.filter = [splits["train"], splits["valid"], splits["test"]]
        self.splits = splits
        self.batch_size = int(batch_size)

    def __call__(self, model: Any, split: str, batch_size: int | None = None) -> tuple[dict[str, Any], float]:
        """(metrics per tie rule, seconds) of ``model`` on ``split``; the model's train/eval mode is kept."""
        was_training = model.training
        start = time.perf_counter()
        result = self.evaluator.evaluate(
            model, self.splits[split], batch_size=batch_size or self.batch_size, use_tqdm=False,
            additional_filter_triples=self.filter,
        )
        seconds = time.perf_counter() - start
        model.train(was_training)
        return metrics_of(result), seconds


# ------------------------------------------------------------------------------------ components
def build(recipe: dict[str, Any], factory: CoreTriplesFactory, seed: int) -> tuple[Any, Any]:
    """(model, training loop) of a recipe."""
    loss = loss_resolver.make(recipe["loss"], recipe.get("loss_kwargs") or {})
    model = model_resolver.make(recipe["model"], recipe.get("model_kwargs") or {}, triples_factory=factory,
                                loss=loss, random_seed=seed)
    optimizer = optimizer_resolver.make(recipe["optimizer"], recipe.get("optimizer_kwargs") or {},
                                        params=model.get_grad_params())
    loop_kwargs: dict[str, Any] = {"automatic_memory_optimization": False}
    if recipe["training_loop"].lower() == "slcwa":
        loop_kwargs["negative_sampler"] = recipe.get("negative_sampler", "basic")
        loop_kwargs["negative_sampler_kwargs"] = recipe.get("negative_sampler_kwargs") or {}
    loop = training_loop_resolver.make(recipe["training_loop"], model=model, triples_factory=factory,
                                       optimizer=optimizer, **loop_kwargs)
    return model, loop


class BudgetCallback(TrainingCallback):
    """Counts examples, validates on a training-seconds schedule, stops at the budget (between batches)."""

    def __init__(self, clock: common.TrainClock, every_s: float | None, validate: Any) -> None:
        super().__init__()
        self.clock = clock
        self.every_s = every_s
        self.next_s = every_s
        self.validate = validate
        self.examples = 0
        self.steps = 0

    def pre_batch(self, **kwargs: Any) -> None:
        # Runs before the batch's forward pass; the previous step is fully applied here.
        if self.clock.exhausted:
            raise BudgetExhausted
        if self.next_s is not None and self.clock.seconds >= self.next_s:
            self.clock.pause()
            self.validate(self.steps)
            while self.next_s <= self.clock.seconds:
                self.next_s += self.every_s
            self.clock.start()

    def post_batch(self, epoch: int, batch: Any, **kwargs: Any) -> None:
        self.examples += int(self.training_loop._get_batch_size(batch))
        self.steps += 1


def num_examples(loop: Any, factory: CoreTriplesFactory) -> int:
    """Training examples in one epoch of the loop (triples for sLCWA, (h, r) queries for LCWA)."""
    return len(loop._create_training_data_loader(factory, batch_size=1, drop_last=False, num_workers=0,
                                                 pin_memory=False, shuffle=True, sampler=None).dataset)


# ----------------------------------------------------------------------------------------- modes
def run_train(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one recipe for the budget with periodic validation; evaluate the test split afterwards."""
    recipe = spec["recipe"]
    seed = int(spec.get("seed", 0))
    set_random_seed(seed)
    factory, splits = load_factories(spec, bool(recipe.get("create_inverse_triples", False)))
    evaluate = Evaluation(splits, spec["eval_batch_size"])
    model, loop = build(recipe, factory, seed)
    clock = common.TrainClock(float(spec["budget_s"]))
    validations: list[dict[str, Any]] = []
    best: dict[str, Any] = {"mrr": -math.inf, "state": None, "step": None}
    curve_test = bool(spec.get("curve_test", False))

    def validate(step: int) -> None:
        metrics, seconds = evaluate(model, "curve")
        record: dict[str, Any] = {"step": step, "seconds": clock.seconds, "eval_seconds": seconds,
                                  **metrics[common.HEADLINE_TIE_RULE],
                                  "realistic_mrr": metrics["realistic"]["mrr"]}
        if curve_test:
            test_metrics, test_seconds = evaluate(model, "test")
            record["test_mrr"] = test_metrics[common.HEADLINE_TIE_RULE]["mrr"]
            record["eval_seconds"] += test_seconds
        validations.append(record)
        if record["mrr"] > best["mrr"]:
            best.update(mrr=record["mrr"], step=step, state=copy.deepcopy(model.state_dict()))
        print(f"[{spec['system']}] step {step} {clock.seconds:.1f}s: valid MRR {record['mrr']:.4f} "
              f"({seconds:.1f}s eval)", flush=True)

    callback = BudgetCallback(clock, spec.get("validate_every_s"), validate)
    batch_size = int(recipe["batch_size"])
    stop_reason = "max_epochs"
    wall0 = time.perf_counter()
    clock.start()
    try:
        loop.train(triples_factory=factory, num_epochs=int(recipe.get("max_epochs", 1_000_000)),
                   batch_size=batch_size, use_tqdm=False, use_tqdm_batch=False, callbacks=[callback],
                   num_workers=int(recipe.get("num_workers", 0)))
    except BudgetExhausted:
        stop_reason = "time_budget"
    clock.pause()
    train_seconds = clock.seconds
    if not validations or validations[-1]["step"] != callback.steps:
        validate(callback.steps)
    peak_train = common.peak_rss_bytes()
    restored = best["state"] is not None and best["step"] != callback.steps
    if restored:
        model.load_state_dict(best["state"])
    test_metrics, test_seconds = evaluate(model, "test")
    epoch_examples = num_examples(loop, factory)
    epochs = callback.examples / epoch_examples
    return {
        "stop_reason": stop_reason, "train_seconds": train_seconds, "steps": callback.steps,
        "examples_seen": callback.examples, "examples_per_epoch": epoch_examples, "epochs": epochs,
        **common.throughput(epochs, int(splits["train"].shape[0]), train_seconds),
        "examples_per_s": callback.examples / train_seconds if train_seconds else math.nan,
        "validations": validations, "validation_eval_seconds": sum(v["eval_seconds"] for v in validations),
        "best_step": best["step"], "best_valid_mrr": best["mrr"], "restored_best": restored,
        "test": test_metrics, "test_eval_seconds": test_seconds,
        "peak_rss_bytes_train": peak_train, "wall_seconds": time.perf_counter() - wall0,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "real_floats_per_entity": _floats_per_entity(model),
    }


def _floats_per_entity(model: Any) -> int | None:
    """Real numbers stored per entity (a complex number counts twice)."""
    try:
        with torch.no_grad():
            x = model.entity_representations[0](indices=torch.zeros(1, dtype=torch.long))
        return int(x.numel() * (2 if torch.is_complex(x) else 1))
    except Exception:  # noqa: BLE001 - informational only
        return None


def run_evalbench(spec: dict[str, Any]) -> dict[str, Any]:
    """Evaluator-only timing: randomly initialised models of the given size on the test split.

    A model is evaluated at every batch size in ``batch_sizes`` (only at ``eval_batch_size`` when its entry
    says ``"sweep": false``), ``repeats`` times; the first call is reported as ``cold``.
    """
    seed = int(spec.get("seed", 0))
    set_random_seed(seed)
    rows = []
    for entry in spec["models"]:
        factory, splits = load_factories(spec, bool(entry.get("create_inverse_triples", True)))
        evaluate = Evaluation(splits, spec["eval_batch_size"])
        model = model_resolver.make(entry["model"], entry.get("model_kwargs") or {}, triples_factory=factory,
                                    random_seed=seed)
        sizes = spec["batch_sizes"] if entry.get("sweep", True) else [spec["eval_batch_size"]]
        for batch_size in sizes:
            times, metrics = [], None
            for _ in range(int(spec.get("repeats", 2))):
                metrics, seconds = evaluate(model, "test", batch_size=batch_size)
                times.append(seconds)
            rows.append({"name": entry["name"], "model": entry["model"], "model_kwargs": entry.get("model_kwargs"),
                         "batch_size": batch_size, "cold_seconds": times[0], "warm_seconds": min(times[1:] or times),
                         "seconds": times, "mrr": metrics[common.HEADLINE_TIE_RULE]["mrr"] if metrics else None})
            print(f"[evalbench pykeen] {entry['name']} batch {batch_size}: {times}", flush=True)
    return {"rows": rows}


def versions() -> dict[str, Any]:
    import pykeen

    return {"pykeen": pykeen.get_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            **common.environment()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("result", type=Path)
    args = parser.parse_args(argv)
    spec = common.read_json(args.spec)
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    start = time.perf_counter()
    out = run_train(spec) if spec["mode"] == "train" else run_evalbench(spec)
    out.update(format=common.RESULT_FORMAT, library="pykeen", system=spec["system"], dataset=spec["dataset"],
               mode=spec["mode"], spec=spec, versions=versions(), peak_rss_bytes=common.peak_rss_bytes(),
               process_seconds=time.perf_counter() - start)
    common.write_json(args.result, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
