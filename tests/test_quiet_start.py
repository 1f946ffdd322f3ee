"""``quovadis train`` does not import TensorFlow (TensorBoard would, when it is installed) unless the user already
has; ``quovadis --version`` answers without importing torch."""
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.data.synthetic import make_moving_shapes

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.name=timm:test_resnet", "model.pretrained=false", "data.clip_len=2", "data.size=16",
        "data.short_side=16", "data.flip=false", "data.multiscale=false", "data.batch_size=2", "data.workers=0",
        "progress=false", "epochs=1"]


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_train_with_tensorboard_does_not_import_tensorflow(tmp_path):
    pytest.importorskip("tensorboard")
    data = make_moving_shapes(tmp_path / "shapes", classes=2, per_class=2, frames=4, size=16, seed=0)
    out = tmp_path / "run"
    args = ["train", f"out={out}", f"data.root={data}", "tensorboard=true", *TINY]
    proc = _python(f"import sys; from zoo.cli.main import main; rc = main({args!r}); "
                   "print('RC', rc, 'TF', 'tensorflow' in sys.modules)")
    assert proc.returncode == 0 and "RC 0" in proc.stdout, proc.stderr[-3000:]
    assert "TF False" in proc.stdout, "quovadis train imported tensorflow"
    assert list((out / "tensorboard").glob("events.out.tfevents.*")), "no TensorBoard event file written"


def test_version_flag():
    proc = _python("import sys; from zoo.cli.main import main; sys.argv = ['quovadis', '--version']; main()")
    import inflate
    assert proc.returncode == 0 and proc.stdout.strip() == f"quovadis {inflate.__version__}", proc.stderr[-2000:]
