"""Execute notebooks/quickstart.ipynb on the RouterBench logs and check its outputs."""

import base64
import os

import pytest

from tests.conftest import REPO, requires_shared_data

_INSTALL = "install the test extra: pip install 'learned-router[test]'"
nbformat = pytest.importorskip("nbformat", reason=f"nbformat is missing; {_INSTALL}")
nbclient = pytest.importorskip("nbclient", reason=f"nbclient is missing; {_INSTALL}")
kernelspec = pytest.importorskip(
    "ipykernel.kernelspec", reason=f"ipykernel is missing; {_INSTALL}")

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
KERNEL_NAME = "learned-router-test"
# Per cell. Training takes well under a minute once the static vectors are
# cached, but the first run on a machine distills them, which took about four
# minutes on a 2-core CPU.
CELL_TIMEOUT = 1200


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Run the notebook in a kernel of this interpreter, writing into a temp folder.

    Returns the executed notebook and the folder it wrote to.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    # A kernel spec written for sys.executable, so that the kernel imports what
    # this test process imports, whatever "python3" names elsewhere.
    kernels = tmp_path_factory.mktemp("kernels")
    kernelspec.write_kernel_spec(kernels / KERNEL_NAME)
    manager = AsyncKernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
    )

    work = tmp_path_factory.mktemp("quickstart")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    env = {**os.environ, "ROUTER_QUICKSTART_DIR": str(work)}
    # A client given a kernel manager leaves the kernel running unless
    # cleanup_kc is set, and its open sockets then fail the run as ResourceWarnings.
    client.execute(cleanup_kc=True, env=env)
    return notebook, work


def tagged(notebook, tag: str):
    """Return the one code cell that carries ``tag``."""
    cells = [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def stdout(cell) -> str:
    return "".join(out.text for out in cell.outputs
                   if out.output_type == "stream" and out.name == "stdout")


def test_notebook_saved_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], "clear the outputs before committing"
            assert cell.execution_count is None


@requires_shared_data
def test_notebook_writes_bundle_and_store(executed):
    _, work = executed
    assert (work / "runs" / "quickstart" / "manifest.json").is_file()
    assert (work / "mlflow.db").is_file()
    assert (work / "mlruns").is_dir()


@requires_shared_data
def test_notebook_artifacts_in_work_folder(executed):
    _, work = executed
    assert list((work / "mlruns").rglob("validation_curve.png"))
    assert list((work / "mlruns").rglob("quickstart/manifest.json"))


@requires_shared_data
def test_notebook_prints_report(executed):
    notebook, _ = executed
    report = stdout(tagged(notebook, "report"))
    assert report.startswith("Routing report: 445 prompts, 11 models")
    assert "Oracle" in report
    assert "AIQ" in report


@requires_shared_data
def test_notebook_shows_plot(executed):
    notebook, work = executed
    images = [out.data["image/png"] for out in tagged(notebook, "plot").outputs
              if out.output_type == "execute_result" and "image/png" in out.data]
    assert len(images) == 1
    assert base64.b64decode(images[0]).startswith(b"\x89PNG\r\n\x1a\n")
    assert (work / "runs" / "quickstart_curve.png").is_file()


@requires_shared_data
def test_notebook_picks_known_models(executed):
    import router

    notebook, work = executed
    models = set(router.load(work / "runs" / "quickstart").models)
    header, *rows = stdout(tagged(notebook, "picks")).splitlines()
    assert header.split()[:2] == ["quality=0.9", "quality=1.0"]
    assert len(rows) == 5
    for row in rows:
        cheaper, best = row.split()[:2]
        assert cheaper in models
        assert best in models


@requires_shared_data
def test_notebook_explains_pick(executed):
    notebook, _ = executed
    lines = stdout(tagged(notebook, "explain")).splitlines()
    assert lines[0].startswith("picked ")
    assert len(lines) == 1 + 11
    assert sum(line.endswith("<- picked") for line in lines) == 1


@requires_shared_data
def test_notebook_lists_mlflow_run(executed):
    notebook, _ = executed
    text = stdout(tagged(notebook, "mlflow"))
    assert "status FINISHED" in text
    assert "featurizer = static" in text
    assert "val_aiq = " in text
    assert "quickstart/manifest.json" in text
    assert "validation_curve.png" in text
