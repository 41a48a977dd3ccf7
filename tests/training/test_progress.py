"""Console progress: plain lines when redirected, a live line on a terminal, phases named, one step count."""

from __future__ import annotations

import io

import pytest

from hale_tf import training
from hale_tf.training.progress import Progress, ProgressContext, clear_live_line, format_metrics
from tests.training.test_phases import HALE_THEN_NS
from tests.training.test_trainer import QUICK, _model, _triples


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_metrics_is_compact() -> None:
    metrics = {"mrr": 0.678912345, "hits@1": 0.5172, "hits@3": 0.75, "hits@10": 0.9412, "mr": 3.71}
    assert format_metrics(metrics) == "mrr=0.679 h@1=0.52 h@10=0.94"
    assert format_metrics(metrics, ("mrr", "mr")) == "mrr=0.679 mr=3.7"


def test_redirected_progress_writes_no_redraws() -> None:
    stream = io.StringIO()
    progress = Progress(ProgressContext("phase 2/2 negative_sampling", run_seconds=20.0), budget_s=19.0,
                        max_steps=None, step_offset=100, seconds_offset=1.0, stream=stream)
    for step in range(1, 50):
        progress.update(step, step * 0.1, 0.5)
    assert stream.getvalue() == ""  # nothing per step
    progress.validation(49, 4.9, {"mrr": 0.25, "hits@1": 0.1, "hits@10": 0.5}, best=True)
    progress.close("done")
    assert stream.getvalue() == ("phase 2/2 negative_sampling  step 149  5.9 s/20.0 s  loss=0.5  valid mrr=0.250 "
                                 "h@1=0.10 h@10=0.50  (best)\ndone\n")


def test_terminal_progress_redraws_one_line_and_clears_it_for_log_lines() -> None:
    stream = _Terminal()
    progress = Progress(ProgressContext(), budget_s=None, max_steps=10, stream=stream)
    progress.update(3, 0.3, 1.25)
    assert stream.getvalue().startswith("\r\x1b[K[######..............] step 3/10") and "loss=1.25" in stream.getvalue()
    clear_live_line()  # what the CLI's log handler does before writing a log line
    assert stream.getvalue().endswith("\r\x1b[K")
    progress.close()
    before = stream.getvalue()
    clear_live_line()  # a closed bar is no longer cleared
    assert stream.getvalue() == before


def test_phased_run_names_each_phase_and_counts_steps_on(capsys: pytest.CaptureFixture[str]) -> None:
    validation = training.ValidationData(_triples()[:20])
    result = training.fit_phases(_model(), "hale", _triples(), HALE_THEN_NS, max_steps=10, validate_every_steps=2,
                                 validation=validation, **{**QUICK, "verbose": 1})
    lines = capsys.readouterr().out.splitlines()
    phase_1 = [line for line in lines if line.startswith("phase 1/2 hale ")]
    phase_2 = [line for line in lines if line.startswith("phase 2/2 negative_sampling ")]
    assert phase_1 and phase_2
    # Phase 1 (40 % of 10 steps) ends at step 4 and says that the run goes on; phase 2 counts on to 10.
    assert phase_1[0].startswith("phase 1/2 hale  step 2/10 ") and " valid mrr=" in phase_1[0]
    assert phase_1[-1].startswith("phase 1/2 hale done at step 4 (its share of the run used, ")
    assert phase_1[-1].endswith("; the run continues with the next phase")
    assert phase_2[0].startswith("phase 2/2 negative_sampling  step 6/10 ")
    assert phase_2[-1].startswith("phase 2/2 negative_sampling done at step 10 (max_steps reached, ")
    # The run's last line and its message use the run's step numbers, as the result (summary.json) does.
    assert lines[-1] == result.message
    assert result.message.startswith("training stopped (max_steps reached) at step 10:")
    assert result.message.endswith(f"at step {result.best_step}")
