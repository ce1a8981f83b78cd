"""A dataset is one declaration: a module dropped into stylecls.data.datasets appears everywhere datasets are
named (catalog, `data list`, CLI choices, recipes, `data download`, `data import`) with nothing else edited."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

import stylecls.data.datasets as package
from stylecls.cli import main
from stylecls.cli.app import RegistryChoice
from stylecls.data import DATASETS, DOWNLOADABLE, IMPORTABLE, catalog, dataset, register
from stylecls.errors import StyleclsError
from stylecls.recipes import recipe_for

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")

#: The whole declaration of a new dataset, as a contributor would write stylecls/data/datasets/weaves.py.
MODULE = '''
"""Weaves: ``weaves/<loom|hand>/<class>/*.png``, two domains, three classes."""

from pathlib import Path

from stylecls.data.catalog import Counts, Listing
from stylecls.data.registry import DatasetDef, register
from stylecls.data.scan import read_domains
from stylecls.data.sources import HttpArchive, ParquetSchema
from stylecls.data.splits import domain_split
from stylecls.recipes import Recipe

DOMAINS = ("hand", "loom")
CLASSES = ("plain", "satin", "twill")


def read(root: Path, seed: int = 0) -> Listing:
    found = read_domains(root, DOMAINS, CLASSES, DATASET)
    expected = Counts(images=12, classes=3, domains={"hand": 6, "loom": 6})
    return Listing(found.rows, domain_split(found, root, seed), CLASSES, DOMAINS, expected, "seeded", found.warnings)


DATASET = register(DatasetDef(
    name="weaves",
    title="Weaves",
    help="3 weave patterns, hand-made and loom-made",
    read=read,
    folder="weaves",
    layout="weaves/<hand|loom>/<plain|satin|twill>/*.png",
    source="the weavers' guild",
    domains=DOMAINS,
    classes=CLASSES,
    recipe=Recipe(arch="cifar_resnet20", img_size=16, epochs=3, batch_size=8, lr=0.05, weight_decay=5e-4,
                  warmup_epochs=0, label_smoothing=0.0),
    downloads=(HttpArchive("guild", "{url}/weaves.tar.gz", md5="{md5}", about="the guild's archive"),),
    parquet=ParquetSchema(image="picture", label="weave", domain="made"),
))
'''


def _png(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 40 % 256, 90, 160)).save(buf, "PNG")
    return buf.getvalue()


def _archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i, (d, c) in enumerate((d, c) for d in ("hand", "loom") for c in ("plain", "satin", "twill")):
            for k in range(2):
                data = _png(2 * i + k)
                info = tarfile.TarInfo(f"weaves/{d}/{c}/{k}.png")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def weaves(tmp_path, monkeypatch, http_folder):
    """The new dataset as ONE file in a folder on stylecls.data.datasets' path; forgotten afterwards."""
    www, url = http_folder
    archive = _archive()
    (www / "weaves.tar.gz").write_bytes(archive)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    module = plugins / "weaves.py"
    module.write_text(MODULE.replace("{url}", url).replace("{md5}", hashlib.md5(archive).hexdigest()))
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(plugins)])
    DATASETS.discover()
    yield module
    DATASETS.remove("weaves")
    sys.modules.pop(f"{package.__name__}.weaves", None)


def cli(monkeypatch, *args: object) -> int:
    monkeypatch.setattr(sys, "argv", ["stylecls", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
        raise SystemExit(0)
    return int(e.value.code or 0)


def test_a_new_dataset_is_one_module(weaves, tmp_path, monkeypatch, capsys):
    files = sorted(p.relative_to(tmp_path).as_posix() for p in weaves.parent.rglob("*") if p.is_file())
    assert files == ["plugins/weaves.py"]  # the one file the new dataset is
    # the registry and every view of it
    assert "weaves" in DATASETS and "weaves" in DOWNLOADABLE and "weaves" in IMPORTABLE
    for registry in ("stylecls.data:DATASETS", "stylecls.data:DOWNLOADABLE", "stylecls.data:IMPORTABLE"):
        assert "weaves" in RegistryChoice(registry).names  # the choices of train/sweep/data --dataset
    # its recipe
    assert recipe_for("weaves").arch == "cifar_resnet20" and recipe_for("weaves").img_size == 16
    # `data list`: missing, with its help and how to get it
    root = tmp_path / "data"
    assert cli(monkeypatch, "data", "list", "--data-root", root) == 0
    out = capsys.readouterr().out
    assert "weaves" in out and "3 weave patterns" in out and "stylecls data download --dataset weaves" in out
    # a missing copy names its layout and its download
    with pytest.raises(StyleclsError, match=r"Weaves not found.*weaves/<hand\|loom>.*data download --dataset weaves"):
        catalog("weaves", root)
    # `data download` fetches its declared source (checksum verified), and the catalog reads it
    assert cli(monkeypatch, "data", "download", "-d", "weaves", "--dry-run", "--data-root", root) == 0
    assert "weaves.tar.gz" in capsys.readouterr().out
    assert cli(monkeypatch, "data", "download", "-d", "weaves", "--data-root", root) == 0
    assert "OK: complete and readable" in capsys.readouterr().out
    data = catalog("weaves", root)
    assert len(data) == 12 and data.info.complete and data.info.domains == ("hand", "loom")
    provenance = root / "weaves" / "stylecls-source.json"
    assert json.loads(provenance.read_text())["source"] == "guild"
    image = next((root / "weaves").rglob("*.png"))
    assert provenance.stat().st_mode & 0o777 == image.stat().st_mode & 0o777  # the umask's, not 0600
    # `data import` converts a parquet copy in its declared schema
    pq, pa = pytest.importorskip("pyarrow.parquet"), pytest.importorskip("pyarrow")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    rows = [({"bytes": _png(i), "path": f"p{i}.png"}, i % 3, ("hand", "loom")[i % 2]) for i in range(6)]
    table = pa.table({"picture": pa.array([r[0] for r in rows], image), "weave": pa.array([r[1] for r in rows]),
                      "made": pa.array([r[2] for r in rows])})
    pq.write_table(table, tmp_path / "weaves.parquet")
    other = tmp_path / "other"
    assert cli(monkeypatch, "data", "import", "-d", "weaves", "--from", tmp_path / "weaves.parquet",
               "--data-root", other) == 1  # imported; 6 of 12 images: incomplete
    assert len(catalog("weaves", other)) == 6 and (other / "weaves" / "loom" / "satin" / "p1.png").is_file()
    # `data check` --dataset accepts it (the option's parser is the registry's, as for train and sweep)
    assert cli(monkeypatch, "data", "check", "-d", "weaves", "--data-root", root) == 0


def test_a_declaration_that_contradicts_itself_is_refused():
    demo = dataset("demo")
    with pytest.raises(StyleclsError, match="identifier"):
        register(replace(demo, name="my dataset"))
    with pytest.raises(StyleclsError, match="seed"):
        register(replace(demo, name="noseed", options=("split",)))
    with pytest.raises(StyleclsError, match="declared twice"):
        register(replace(demo, read=lambda root, seed=0: None))  # another module's reader under the demo's name
    assert "noseed" not in DATASETS and DATASETS["demo"] is demo
    with pytest.raises(StyleclsError, match="unknown dataset 'nope'; choose one of: demo, dtd"):
        dataset("nope")


def test_the_built_in_datasets_are_the_modules_of_the_package():
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(package.__path__)}
    assert modules == set(DATASETS) == {"demo", "dtd", "folder", "office_home", "pacs", "wikiart"}
    assert all(Path(sys.modules[DATASETS[n].read.__module__].__file__ or "").stem == n for n in DATASETS)
