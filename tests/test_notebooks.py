"""The notebooks in ``notebooks/``: committed without outputs, and each runs top to bottom.

Execution uses nbclient with the ``python3`` kernel, the notebooks folder as the working
directory and a per-cell timeout of 900 s; the notebooks write their files under a temporary
folder (``WATERSUPPLY_NOTEBOOK_OUT``), never into the repository.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat: pip install -e '.[test]'")

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
KERNEL = "python3"
CELL_TIMEOUT_S = 900


def test_notebooks_present() -> None:
    assert len(NOTEBOOKS) >= 3, f"expected the notebooks in {NOTEBOOKS_DIR}, found {[p.name for p in NOTEBOOKS]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [f"cell {i} ({cell.get('id', '?')})" for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, (f"{path.name}: outputs or execution counts in {', '.join(dirty)}; strip them before "
                       "committing (Jupyter: Edit → Clear Outputs of All Cells, or `jupyter nbconvert "
                       "--clear-output --inplace`)")


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """The ``python3`` kernel; its spec is installed for this user only if Jupyter cannot find one."""
    pytest.importorskip("nbclient", reason="the notebook tests need nbclient: pip install -e '.[test]'")
    pytest.importorskip("ipykernel", reason="the notebook tests need ipykernel: pip install -e '.[test]'")
    from jupyter_client.kernelspec import find_kernel_specs

    if KERNEL not in find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user", "--name", KERNEL],
                       check=True, capture_output=True)
    return KERNEL


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, kernel_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("WATERSUPPLY_NOTEBOOK_OUT", str(tmp_path))  # the kernel inherits it
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}", pytrace=False)
    seconds = time.perf_counter() - t0
    print(f"{path.name}: {seconds:.0f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: error outputs {[(e.ename, e.evalue) for e in errors]}"
    shown = [k for c in nb.cells if c.cell_type == "code" for o in c.outputs for k in o.get("data", {})]
    assert "image/png" in shown or "text/html" in shown, f"{path.name}: no plot or map was shown inline"
    assert any(tmp_path.rglob("*")), f"{path.name} wrote nothing under WATERSUPPLY_NOTEBOOK_OUT"
