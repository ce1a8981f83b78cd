"""`stylecls data import` and the Hub path of `data download`: parquet in the Hub copies' schemas -> layout."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stylecls.cli import main
from stylecls.data import DATASETS, catalog
from stylecls.data.datasets import office_home, pacs, wikiart


def exit_code(monkeypatch: pytest.MonkeyPatch, *args: object) -> int:
    monkeypatch.setattr(sys, "argv", ["stylecls", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
        raise SystemExit(0)
    return e.value.code or 0


def test_label_mapping_we_rely_on():
    """The Hub cards' label order (flwrlabs/pacs, flwrlabs/office-home) and the WikiArt fallback (ArtGAN's order)."""
    p = DATASETS["pacs"]
    assert p.classes == ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")
    assert p.parquet is not None
    assert (p.parquet.image, p.parquet.domain, p.parquet.label) == ("image", "domain", "label")
    oh = DATASETS["office_home"].classes
    assert oh is not None and len(oh) == 65 and oh[0] == "Alarm_Clock" and oh[44] == "Postit_Notes"
    assert oh[58:60] == ("TV", "Table") and oh[64] == "Webcam"
    assert DATASETS["office_home"].domains == ("Art", "Clipart", "Product", "Real World")
    w = DATASETS["wikiart"]
    assert w.parquet is not None and (w.parquet.image, w.parquet.label, w.parquet.domain) == ("image", "style", None)
    assert w.classes is not None and w.classes[:3] == ("Abstract_Expressionism", "Action_painting", "Analytical_Cubism")
    assert w.classes[12] == "Impressionism" and w.classes[26] == "Ukiyo_e"


def _jpeg(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (6, 6), (seed * 37 % 256, seed * 11 % 256, 90)).save(buf, "JPEG")
    return buf.getvalue()


def write_parquet(path: Path, rows: list[dict], label_column: str, names: list[str] | None,
                  domain: bool = True, extra_labels: tuple[str, ...] = ()) -> None:
    """A parquet file as `datasets` writes one: image struct<bytes, path>, ClassLabel ints, features metadata."""
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    columns = {"image": pa.array([r["image"] for r in rows], type=image_type)}
    features: dict = {"image": {"_type": "Image"}}
    if domain:
        columns["domain"] = pa.array([r["domain"] for r in rows], pa.string())
        features["domain"] = {"dtype": "string", "_type": "Value"}
    for col in (*extra_labels, label_column):
        columns[col] = pa.array([r.get(col, 0) for r in rows], pa.int64())
        features[col] = {"names": names if col == label_column else ["x"], "_type": "ClassLabel"}
    table = pa.table(columns)
    if names is not None:
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def pacs_rows(named: bool = True) -> tuple[list[dict], dict[tuple[str, str], int]]:
    rows, counts = [], {}
    for i, d in enumerate(pacs.DOMAINS):
        for j, c in enumerate(pacs.CLASSES):
            n = (i + j) % 3 + 1
            counts[(d, c)] = n
            for k in range(n):
                path = f"pic_{k:03d}.jpg" if named else None
                rows.append({"image": {"bytes": _jpeg(len(rows)), "path": path}, "domain": d, "label": j})
    return rows, counts


def assert_catalog(data, counts: dict[tuple[str, str], int], classes) -> None:
    frame = data.frame
    got = frame.groupby(["domain", "class_name"]).size().to_dict()
    assert got == counts
    assert all(frame["label"] == [list(classes).index(c) for c in frame["class_name"]])


def test_pacs_parquet_import_is_exact_and_idempotent(tmp_path, monkeypatch, capsys):
    rows, counts = pacs_rows()
    write_parquet(tmp_path / "pacs.parquet", rows, "label", list(pacs.CLASSES))
    root = tmp_path / "data"
    assert exit_code(monkeypatch, "data", "import", "-d", "pacs", "--from", tmp_path / "pacs.parquet",
                     "--data-root", root) == 1  # a small copy: imported, and the check says incomplete
    out = capsys.readouterr().out
    assert f"{len(rows)} images into" in out and "NOT OK: incomplete" in out
    first = catalog("pacs", root)
    assert_catalog(first, counts, pacs.CLASSES)
    assert (root / "pacs" / "art_painting" / "dog" / "pic_000.jpg").is_file()
    files = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert exit_code(monkeypatch, "data", "import", "-d", "pacs", "--from", tmp_path / "pacs.parquet",
                     "--data-root", root) == 1
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == files
    second = catalog("pacs", root)
    columns = ["path", "label", "domain", "split"]
    assert second.frame[columns].equals(first.frame[columns])


def test_office_home_shards_with_unnamed_images(tmp_path, monkeypatch):
    rows, counts = [], {}
    domains = {"art": "Art", "Clipart": "Clipart", "Product": "Product", "Real_World": "Real World"}  # as spelt
    for i, (raw, d) in enumerate(domains.items()):
        for c in (0, 13, 58, 59, 64):
            n = 1 + (i + c) % 2
            counts[(d, office_home.CLASSES[c])] = n
            rows += [{"image": {"bytes": _jpeg(len(rows) + k), "path": None}, "domain": raw, "label": c}
                     for k in range(n)]
    half = len(rows) // 2
    write_parquet(tmp_path / "shards" / "data" / "train-00000-of-00002.parquet", rows[:half], "label",
                  list(office_home.CLASSES))
    write_parquet(tmp_path / "shards" / "data" / "train-00001-of-00002.parquet", rows[half:], "label", None)
    root = tmp_path / "data"
    assert exit_code(monkeypatch, "data", "import", "-d", "office_home", "--from", tmp_path / "shards",
                     "--data-root", root) == 1
    assert_catalog(catalog("office_home", root), counts, office_home.CLASSES)
    assert (root / "office_home" / "Real World" / "TV").is_dir()


def test_wikiart_uses_the_files_own_label_names(tmp_path, monkeypatch):
    names = list(reversed(wikiart.STYLES))  # a file whose ClassLabel order (and case) differs from ArtGAN's
    names[0] = names[0].lower()
    rows = [{"image": {"bytes": _jpeg(k), "path": f"artist_{k}.jpg"}, "style": k % 4} for k in range(12)]
    write_parquet(tmp_path / "wikiart.parquet", rows, "style", names, domain=False, extra_labels=("artist", "genre"))
    root = tmp_path / "data"
    assert exit_code(monkeypatch, "data", "import", "-d", "wikiart", "--from", tmp_path / "wikiart.parquet",
                     "--data-root", root) == 1
    frame = catalog("wikiart", root).frame
    expected = dict.fromkeys(reversed(wikiart.STYLES[-4:]), 3)  # labels 0..3 = the last four styles, reversed
    assert frame.groupby("class_name").size().to_dict() == expected
    assert (root / "wikiart" / "Ukiyo_e" / "artist_0.jpg").is_file()
    assert all(frame["label"] == [wikiart.STYLES.index(c) for c in frame["class_name"]])


def test_bad_parquet_is_one_clear_message(tmp_path, monkeypatch, capsys):
    rows, _ = pacs_rows()
    write_parquet(tmp_path / "nodomain.parquet", rows, "label", list(pacs.CLASSES), domain=False)
    root = tmp_path / "data"
    assert exit_code(monkeypatch, "data", "import", "-d", "pacs", "--from", tmp_path / "nodomain.parquet",
                     "--data-root", root) == 2
    err = capsys.readouterr().err
    assert "has no column 'domain'" in err and "Traceback" not in err
    rows[3]["domain"] = "watercolour"
    write_parquet(tmp_path / "baddomain.parquet", rows, "label", list(pacs.CLASSES))
    assert exit_code(monkeypatch, "data", "import", "-d", "pacs", "--from", tmp_path / "baddomain.parquet",
                     "--data-root", root) == 2
    err = capsys.readouterr().err
    assert "unknown pacs domain 'watercolour'" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in root.iterdir()] == []  # nothing half-written where data check looks


def test_domainbed_zip_import_brings_the_kfold_lists(tmp_path, monkeypatch, make_images):
    src = tmp_path / "src"
    keys = [f"{d}/{c}/{i}.jpg" for d in ("art_painting", "sketch") for c in ("dog", "house") for i in range(2)]
    make_images(src / "PACS", keys)
    (src / "PACS" / "splits").mkdir()
    for d in ("art_painting", "sketch"):
        (src / "PACS" / "splits" / f"{d}_train_kfold.txt").write_text(f"{d}/dog/0.jpg 1\n")
    with zipfile.ZipFile(tmp_path / "PACS.zip", "w") as zf:
        for p in sorted(src.rglob("*")):
            zf.write(p, p.relative_to(src).as_posix())
    root = tmp_path / "data"
    assert exit_code(monkeypatch, "data", "import", "-d", "pacs", "--from", tmp_path / "PACS.zip",
                     "--data-root", root) == 1
    frame = catalog("pacs", root, splits_dir=root / "pacs" / "splits").frame
    assert frame["path"].map(lambda p: Path(p).relative_to(root / "pacs").as_posix()).tolist() == sorted(keys)
    assert (root / "pacs" / "splits" / "sketch_train_kfold.txt").is_file()


def test_hub_download_offline_from_a_populated_cache(tmp_path, monkeypatch, capsys, http_folder):
    """huggingface_hub itself (offline mode, pre-populated cache) feeds the converter; k-fold lists from a mirror."""
    import huggingface_hub.constants as hf

    rows, counts = pacs_rows()
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "datasets--flwrlabs--pacs"
    write_parquet(repo / "snapshots" / commit / "data" / "train-00000-of-00001.parquet", rows, "label",
                  list(pacs.CLASSES))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    www, url = http_folder
    for d in pacs.DOMAINS:  # lists naming every generated image, 1-based labels
        lines = [f"{d}/{c}/pic_{k:03d}.jpg {j + 1}" for j, c in enumerate(pacs.CLASSES) for k in range(counts[(d, c)])]
        for part in ("train", "crossval", "test"):
            chosen = lines if part == "test" else lines[:: 2] if part == "train" else lines[1::2]
            (www / f"{d}_{part}_kfold.txt").write_text("\n".join(chosen) + "\n")
    root = tmp_path / "data"
    assert exit_code(monkeypatch, "data", "download", "-d", "pacs", "--data-root", root, "--mirror", url) == 1
    out = capsys.readouterr().out
    assert "official split lists name" in out and "(split: official)" in out
    data = catalog("pacs", root)
    assert_catalog(data, counts, pacs.CLASSES)
    assert data.info.split_source == "official"
    record = json.loads((root / "pacs" / "stylecls-source.json").read_text())
    assert record["repo_id"] == "flwrlabs/pacs" and len(record["split_files"]) == 12


def test_dassl_office_home_folders_with_train_val(tmp_path, monkeypatch, make_images):
    keys = [f"office_home_dg/{d}/{part}/{c}/{part}_{i}.jpg" for d in ("art", "real_world")
            for part in ("train", "val") for c in ("alarm_clock", "tv") for i in range(2)]
    make_images(tmp_path / "src", keys)
    root = tmp_path / "data"
    assert exit_code(monkeypatch, "data", "import", "-d", "office_home", "--from", tmp_path / "src",
                     "--data-root", root) == 1
    counts = {(d, c): 4 for d in ("Art", "Real World") for c in ("Alarm_Clock", "TV")}
    assert_catalog(catalog("office_home", root), counts, office_home.CLASSES)
