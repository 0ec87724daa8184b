"""``examples/notebook.ipynb`` executes cleanly in a Jupyter kernel running this venv's Python.

The kernelspec is installed at test time into a temporary Jupyter data folder (CI runs from a
fresh clone, so nothing may depend on a manual ``ipykernel install``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples._support import EXAMPLES, assert_images

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = EXAMPLES / "notebook.ipynb"


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cells"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert nb.metadata.kernelspec.name == "python3"


def test_notebook_runs_and_displays_images(
    tmp_path: Path, example_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    jupyter = tmp_path / "jupyter"
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(jupyter)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for key, value in example_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter / "share" / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    work = tmp_path / "work"
    work.mkdir()

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(work)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    shown = [out.data for out in outputs if out.output_type in ("display_data", "execute_result")]
    jpegs = [data["image/jpeg"] for data in shown if "image/jpeg" in data]
    html = [data["text/html"] for data in shown if "text/html" in data]
    assert jpegs, "no image/jpeg output: GeneratedImage did not display as an image"
    assert sum("data:image/jpeg;base64," in h for h in html) >= 4  # result, num_images, grids
    before_after = [h for h in html if "before" in h and "strength 0.6" in h]
    assert before_after and before_after[0].count("data:image/jpeg;base64,") == 4
    assert "inpainted: left half" in before_after[0]

    executable = nb.cells[-1].outputs[0].text.strip()
    assert Path(executable).resolve() == Path(sys.executable).resolve()

    out = work / "jaguar-output" / "notebook"
    assert_images([out / "jaguar-7.jpg"], fmt="JPEG", size=(128, 128))
    assert_images([out / "jaguar.png"], fmt="PNG", size=(128, 128))
    assert_images(sorted(out.glob("batch-*.jpg")), fmt="JPEG", size=(96, 96))
    assert len(list(out.glob("batch-*.jpg"))) == 3
