"""hale-tf vs PyKEEN, side by side on the same machine: time-to-accuracy, throughput, evaluator speed.

One command (from the repository root, in the project's environment)::

    python bench/peers/run.py                      # WN18RR and FB15k-237 at 10 min, CoDEx-M at 15 min
    python bench/peers/run.py --datasets umls --budget 30 --out /tmp/peers   # a quick check

What it does:

1. creates (once) PyKEEN's own virtual environment in ``bench/peers/.venv`` (CPU PyTorch, then pykeen
   from ``requirements-pykeen.txt``; nothing of it enters the project's requirements);
2. for each dataset, resolves it through ``hale_tf.data.resolve_dataset`` and writes the splits as id
   TSV files with one shared mapping (sorted training vocabulary; valid/test triples with unseen
   entities are dropped and counted), so both libraries rank the very same triples;
3. times both evaluators alone on the test split with random models of the same size;
4. trains every system, one after another, each in its own process (so its peak memory, ``VmHWM``, is
   its own): the same training-time budget, validation every ``--validate-every`` training seconds
   (evaluation time excluded from the clock), best-validation weights restored, test evaluated after;
5. writes ``results.json`` (everything, with versions and exact settings), ``results.md`` (tables and
   the issue's goals) and ``mrr_vs_time.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import peers_common as common  # noqa: E402
import peers_recipes as recipes  # noqa: E402
import peers_report as report  # noqa: E402
import peers_venv  # noqa: E402

REPORT_FORMAT = "hale_tf.bench.peers.report/1"
#: Scores per PyKEEN evaluation batch (batch = this / N): ~128 MiB of float32 scores, the same order as
#: the working memory hale-tf's evaluator plans for by default.
PYKEEN_EVAL_SCORES = 2**25


def parse_json_arg(text: str | None) -> dict[str, Any]:
    """A JSON object given inline or as ``@path``."""
    if not text:
        return {}
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(recipes.DEFAULT_DATASETS),
                   help="comma-separated registry names (default: %(default)s)")
    p.add_argument("--budget", type=float, default=None,
                   help="training seconds per system for every dataset (default: 600; codex-m 900)")
    p.add_argument("--systems", default=",".join(recipes.SYSTEMS), help="comma-separated (default: %(default)s)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="output directory (default: %(default)s)")
    p.add_argument("--validate-every", type=float, default=None,
                   help="validation period in training seconds (default: budget / 20)")
    p.add_argument("--valid-subset", type=int, default=1000,
                   help="periodic validation on this many validation triples drawn once (the same for every "
                        "system; 0: the whole split; default: %(default)s); PyKEEN's evaluation is slow")
    p.add_argument("--curve-test", choices=("hale", "all", "none"), default="hale",
                   help="which systems also evaluate the test split at every validation (needed for hale-tf's "
                        "time to PyKEEN's final test MRR; default: %(default)s)")
    p.add_argument("--no-evalbench", action="store_true", help="skip the evaluator-only timing")
    p.add_argument("--evalbench-repeats", type=int, default=2)
    p.add_argument("--hale-config", type=parse_json_arg, default={},
                   help='JSON (or @file) merged into the hale-tf systems, e.g. \'{"fit": {"batch_size": 1000}}\' '
                        'for all or \'{"hale-rotH": {...}}\' per system')
    p.add_argument("--pykeen-config", type=parse_json_arg, default={},
                   help='JSON (or @file) merged into PyKEEN recipes per system, e.g. '
                        '\'{"pykeen-rotate": {"optimizer_kwargs": {"lr": 0.001}}}\'; a new name with a "base" '
                        'adds a variant system: \'{"rotate-lr1e-2": {"base": "pykeen-rotate", ...}}\'')
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="pin both libraries to this many threads (default: each library's own default)")
    p.add_argument("--skip-existing", action="store_true", help="re-use result files already in --out")
    p.add_argument("--report-only", action="store_true", help="only rebuild the report from files in --out")
    p.add_argument("--venv", type=Path, default=peers_venv.DEFAULT_VENV, help="PyKEEN environment")
    p.add_argument("--torch-spec", default=peers_venv.DEFAULT_TORCH_SPEC)
    p.add_argument("--torch-index-url", default=None,
                   help="index for the torch install, e.g. https://download.pytorch.org/whl/cpu")
    p.add_argument("--rebuild-venv", action="store_true")
    p.add_argument("--timeout-extra", type=float, default=3600.0,
                   help="seconds a system's process may run beyond its budget before it is killed")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------- children
def run_child(cmd: list[str], env: dict[str, str], log_path: Path, timeout: float) -> tuple[int, list[str]]:
    """Run a child process; its output goes to ``log_path``, its ``[...]`` progress lines to the console.

    Returns (exit code, last lines of output); the code is -9 when the timeout killed it.
    """
    tail: deque[str] = deque(maxlen=25)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + shlex.join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=str(REPO), bufsize=1)
        started = time.monotonic()
        watchdog = threading.Timer(timeout, proc.kill)  # a silent, hung child is killed too
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                tail.append(line.rstrip())
                if line.startswith("["):
                    print("    " + line.rstrip(), flush=True)
            code = proc.wait()
        finally:
            watchdog.cancel()
        if code < 0 and time.monotonic() - started >= timeout:
            tail.append(f"killed after the {timeout:.0f}s timeout")
    return code, list(tail)


def child_env(library: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    if library == "pykeen":
        env.pop("PYTHONPATH", None)  # nothing of the project's environment inside PyKEEN's
        env["PYTHONNOUSERSITE"] = "1"
    else:
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_system(library: str, spec: dict[str, Any], out_dir: Path, pykeen_python: Path | None,
               timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """Run one spec in its own process; (result, None) or (None, error message)."""
    name = spec["system"]
    spec_path = out_dir / f"{name}.spec.json"
    result_path = out_dir / f"{name}.json"
    common.write_json(spec_path, spec)
    if result_path.exists():
        result_path.unlink()
    if library == "pykeen":
        cmd = [str(pykeen_python), str(HERE / "pykeen_runner.py"), str(spec_path), str(result_path)]
    else:
        cmd = [sys.executable, str(HERE / "hale_runner.py"), str(spec_path), str(result_path)]
    start = time.perf_counter()
    code, tail = run_child(cmd, child_env(library), out_dir / f"{name}.log", timeout)
    if code != 0 or not result_path.exists():
        msg = f"exit code {code} after {time.perf_counter() - start:.0f}s; log {out_dir / f'{name}.log'}"
        print(f"  ! {name} failed: {msg}\n      " + "\n      ".join(tail[-12:]), flush=True)
        return None, msg + "\n" + "\n".join(tail[-12:])
    return common.read_json(result_path), None


# ------------------------------------------------------------------------------------------- specs
def pykeen_eval_batch(num_entities: int) -> int:
    return int(max(32, min(4096, PYKEEN_EVAL_SCORES // max(num_entities, 1))))


def base_spec(args: argparse.Namespace, dataset: str, meta: dict[str, Any], data_dir: Path,
              budget: float, every: float) -> dict[str, Any]:
    return {
        "dataset": dataset, "data_dir": str(data_dir), "num_entities": meta["num_entities"],
        "num_relations": meta["num_relations"], "budget_s": budget, "validate_every_s": every,
        "seed": args.seed, "threads": args.threads,
        "eval_batch_size": pykeen_eval_batch(meta["num_entities"]),
    }


def system_spec(args: argparse.Namespace, system: str, base: dict[str, Any]) -> dict[str, Any]:
    library = recipes.library_of(system)
    curve_test = args.curve_test == "all" or (args.curve_test == "hale" and library == "hale_tf")
    spec = {**base, "mode": "train", "system": system, "curve_test": curve_test}
    if library == "pykeen":
        spec["recipe"] = recipes.pykeen_recipe(system, base["dataset"], args.pykeen_config)
    else:
        spec["hale"] = recipes.hale_config(system, args.hale_config)
    return spec


def evalbench_specs(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    b = base["eval_batch_size"]
    # PyKEEN's CPU default (32) is slower still and its scoring is memory-bound (B × N × d temporaries),
    # so larger batches do not help: b/4 and b are timed.
    sizes = sorted({max(32, b // 4), b})
    common_part = {**base, "mode": "evalbench", "repeats": args.evalbench_repeats}
    return {
        "hale_tf": {**common_part, "system": "evalbench-hale_tf", "models": recipes.EVALBENCH_HALE},
        "pykeen": {**common_part, "system": "evalbench-pykeen", "models": recipes.EVALBENCH_PYKEEN,
                   "batch_sizes": sizes},
    }


# ------------------------------------------------------------------------------------------ report
def _versions_summary(report_data: dict[str, Any]) -> str:
    v = report_data.get("versions", {})
    hale, pk = v.get("hale_tf", {}), v.get("pykeen", {})
    parts = []
    if hale:
        parts.append(f"hale-tf {hale.get('hale_tf')} (TensorFlow {hale.get('tensorflow')}, Keras {hale.get('keras')})")
    if pk:
        parts.append(f"PyKEEN {pk.get('pykeen')} (PyTorch {pk.get('torch')}, {pk.get('torch_threads')} threads)")
    return "; ".join(parts)


def collect(out: Path, datasets: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """Gather every result file under ``out`` for ``datasets`` into one report and write it."""
    data: dict[str, Any] = {"format": REPORT_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                            "command": shlex.join([sys.executable, *sys.argv]), "settings": settings,
                            "environment": common.environment(), "versions": {}, "datasets": {}}
    for name in datasets:
        ds_dir = out / name
        state_path = ds_dir / "dataset.json"
        if not state_path.exists():
            continue
        ds = common.read_json(state_path)
        ds["systems"], ds["evalbench"] = {}, {}
        for system in ds.get("system_names", []):
            path = ds_dir / f"{system}.json"
            if path.exists():
                res = common.read_json(path)
                ds["systems"][system] = res
                data["versions"].setdefault(res["library"], res.get("versions", {}))
        for library in ("hale_tf", "pykeen"):
            path = ds_dir / f"evalbench-{library}.json"
            if path.exists():
                ds["evalbench"][library] = common.read_json(path)
                data["versions"].setdefault(library, ds["evalbench"][library].get("versions", {}))
        ds["goals"] = report.goals(ds)
        data["datasets"][name] = ds
    data["versions_summary"] = _versions_summary(data)
    png = report.plot(data, out / "mrr_vs_time.png")
    data["plot"] = str(png) if png else None
    common.write_json(out / "results.json", data)
    (out / "results.md").write_text(report.markdown(data), encoding="utf-8")
    return data


# -------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    variants = recipes.add_variants(args.pykeen_config, args.hale_config)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if variants and args.systems == ",".join(recipes.SYSTEMS):
        systems += variants
    for s in systems:
        recipes.library_of(s)  # fails early on a typo
    out: Path = args.out.resolve()
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    if args.report_only:
        data = collect(out, datasets, settings)
        print((out / "results.md").read_text(encoding="utf-8"))
        return 0 if data["datasets"] else 1

    mirror = REPO.parent / "shared" / "datasets"
    if "HALE_TF_DATA_MIRROR" not in os.environ and mirror.is_dir():
        os.environ["HALE_TF_DATA_MIRROR"] = str(mirror)
        print(f"[data] HALE_TF_DATA_MIRROR={mirror}", flush=True)
    import peers_data  # imports hale_tf: the project's environment

    pykeen_python = None
    if any(recipes.library_of(s) == "pykeen" for s in systems) or not args.no_evalbench:
        versions = peers_venv.ensure_pykeen_venv(args.venv, torch_spec=args.torch_spec,
                                                 torch_index_url=args.torch_index_url, rebuild=args.rebuild_venv)
        pykeen_python = peers_venv.venv_python(args.venv)
        print(f"[venv] {args.venv}: {versions}", flush=True)

    failures = 0
    for dataset in datasets:
        ds_dir = out / dataset
        meta = peers_data.prepare_dataset(dataset, out / "data" / dataset)
        name = meta["dataset"]
        budget = float(args.budget or recipes.DATASET_BUDGETS.get(name, recipes.DEFAULT_BUDGET_S))
        every = float(args.validate_every or budget / 20)
        print(f"== {name}: {meta['num_entities']} entities, {meta['num_relations']} relations, "
              f"splits {meta['splits']}; budget {budget:.0f}s, validation every {every:.0f}s", flush=True)
        base = base_spec(args, name, meta, out / "data" / dataset, budget, every)
        base["valid_file"] = peers_data.write_valid_subset(out / "data" / dataset, args.valid_subset, args.seed)
        state = {"dataset": name, "meta": meta, "budget_s": budget, "validate_every_s": every,
                 "valid_file": base["valid_file"],
                 "system_names": systems, "errors": {}}
        old_state = ds_dir / "dataset.json"
        if args.skip_existing and old_state.exists():
            state["errors"] = common.read_json(old_state).get("errors", {})
        common.write_json(old_state, state)
        timeout = budget + args.timeout_extra
        if not args.no_evalbench:
            for library, spec in evalbench_specs(args, base).items():
                if args.skip_existing and (ds_dir / f"{spec['system']}.json").exists():
                    continue
                print(f"-- {name}: evaluator timing, {library}", flush=True)
                _, err = run_system(library, spec, ds_dir, pykeen_python, args.timeout_extra)
                if err:
                    state["errors"][spec["system"]] = err
                    failures += 1
        for system in systems:
            if args.skip_existing and (ds_dir / f"{system}.json").exists():
                print(f"-- {name}: {system} (existing result re-used)", flush=True)
                continue
            print(f"-- {name}: {system}, {budget:.0f}s training", flush=True)
            spec = system_spec(args, system, base)
            res, err = run_system(recipes.library_of(system), spec, ds_dir, pykeen_python, timeout)
            if err:
                state["errors"][system] = err
                failures += 1
            else:
                state["errors"].pop(system, None)
                row = report.summary_row(res)
                print(f"   {system}: test MRR {row['test_mrr']:.4f} (realistic {row['test_mrr_realistic']:.4f}), "
                      f"{row['epochs']:.2f} epochs in {row['train_s']:.0f}s, test eval {row['test_eval_s']:.1f}s, "
                      f"peak {row['peak_mib']:.0f} MiB", flush=True)
            common.write_json(old_state, state)
            collect(out, datasets, settings)
    collect(out, datasets, settings)
    print()
    print((out / "results.md").read_text(encoding="utf-8"))
    print(f"results: {out / 'results.json'}, {out / 'results.md'}, {out / 'mrr_vs_time.png'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
