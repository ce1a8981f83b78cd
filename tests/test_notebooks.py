"""The notebooks run headless on a freshly trained tiny demo run, and are committed without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path) -> Path:
    """Two tiny demo runs, SRM and none with the same seed (1 epoch, 32 px, a few training images), evaluated;
    the SRM run inspected."""
    from stylecls.evaluate import evaluate
    from stylecls.inspect_model import inspect_run
    from stylecls.spec import RunSpec, RuntimeOptions
    from stylecls.train import train

    out = tmp_path_factory.mktemp("nb-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STYLECLS_CACHE", str(demo_cache))
        for block in ("none", "srm"):  # two blocks, so results.ipynb has a pair to compare
            run = train(
                RunSpec(dataset="demo", block=block, arch="cifar_resnet20", epochs=1, img_size=32, batch_size=16,
                        limit_train=32, limit_val=16),
                RuntimeOptions(workers=0, device="cpu", out=str(out), progress=False),
            )
            evaluate(run, device="cpu", workers=0, batch_size=256)
        inspect_run(run, device="cpu", workers=0, batch_size=256)
    return out


def test_notebooks_are_committed_without_outputs() -> None:
    assert {p.name for p in NOTEBOOKS} == {"results.ipynb", "style_analysis.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        assert "parameters" in code[0].metadata.get("tags", []) and "STYLECLS_RUNS" in code[0].source


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path: Path, runs_folder: Path, demo_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLECLS_RUNS", str(runs_folder))  # the kernel inherits the environment
    monkeypatch.setenv("STYLECLS_CACHE", str(demo_cache))
    monkeypatch.setenv("MPLBACKEND", "agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(runs_folder)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "not evaluated yet" not in text and "not inspected yet" not in text
    assert "no paired comparison" not in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images  # the plots were drawn
