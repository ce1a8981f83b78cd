"""stylecls report: paired statistics on hand cases, pairing, verdicts, the rendered HTML/markdown, the CLI."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_run import result_run, sweep, write_result
from PIL import Image
from scipy import stats as sps

from stylecls.errors import StyleclsError
from stylecls.report import write_report
from stylecls.report.pairing import check_comparable, pair_runs
from stylecls.report.runs import collect
from stylecls.report.stats import bootstrap_ci, paired_stats, paired_test, t_interval, verdict

A = np.array([0.62, 0.55, 0.71, 0.60, 0.66, 0.58, 0.69, 0.64])
B = np.array([0.60, 0.56, 0.65, 0.57, 0.66, 0.52, 0.64, 0.63])


# --- statistics on hand cases -------------------------------------------------------------------------------


def test_paired_mean_t_interval_and_t_test_match_an_independent_computation() -> None:
    a, b = A[:5], B[:5]
    d = a - b
    n, mean, sd = len(d), d.mean(), d.std(ddof=1)
    half = sps.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    s = paired_stats(a, b, "srm", "se")
    assert s.n == 5 and s.mean == pytest.approx(mean) and s.std == pytest.approx(sd)
    assert (s.t_low, s.t_high) == pytest.approx((mean - half, mean + half))
    assert s.test == "paired t-test" and s.p_value == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert s.wins == pytest.approx(np.mean(d > 0)) and s.ties == pytest.approx(np.mean(d == 0))


def test_wilcoxon_from_six_pairs_exact_hand_value() -> None:
    # six positive differences with distinct ranks: the exact two-sided p is 2 / 2**6
    name, p = paired_test(np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]))
    assert name == "Wilcoxon signed-rank" and p == pytest.approx(2 / 2**6)
    assert paired_test(np.array([0.01, 0.02, 0.03, 0.04, 0.05]))[0] == "paired t-test"


def test_bootstrap_is_deterministic_contains_the_mean_and_agrees_with_a_numpy_bootstrap() -> None:
    d = A - B
    ci = bootstrap_ci(d)
    assert ci == bootstrap_ci(d)
    noisy = np.random.default_rng(5).normal(0.01, 0.02, 12)  # continuous values: another seed moves the bounds
    assert bootstrap_ci(noisy) == bootstrap_ci(noisy) != bootstrap_ci(noisy, seed=1)
    assert ci[0] < d.mean() < ci[1]
    rng = np.random.default_rng(123)  # an independent percentile bootstrap: the same interval up to resampling noise
    means = d[rng.integers(0, len(d), (20_000, len(d)))].mean(axis=1)
    assert ci == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=0.002)


def test_degenerate_cases_have_no_interval() -> None:
    assert np.isnan(t_interval(np.array([0.1]))).all() and np.isnan(bootstrap_ci(np.array([0.1]))).all()
    s = paired_stats(np.array([0.5]), np.array([0.4]), "srm", "se")
    assert "no conclusion" in verdict(s) and "better" not in verdict(s)


def test_auto_interval_is_t_below_six_pairs_else_bootstrap() -> None:
    few, many = paired_stats(A[:5], B[:5]), paired_stats(A, B)
    assert few.method("auto") == "t" and few.ci("auto") == (few.t_low, few.t_high)
    assert many.method("auto") == "bootstrap" and many.ci("auto") == (many.boot_low, many.boot_high)
    assert few.ci("bootstrap") == (few.boot_low, few.boot_high) and many.ci("t") == (many.t_low, many.t_high)


def test_verdict_follows_the_interval() -> None:
    crossing = paired_stats(A[:4], B[:4] + 0.02, "srm", "se")
    assert crossing.boot_low < 0 < crossing.boot_high
    for method in ("auto", "bootstrap", "t"):
        text = verdict(crossing, method)
        assert "not significant" in text and "better" not in text and "worse" not in text
    clear = paired_stats(B + 0.03 + np.arange(8) * 0.001, B, "srm", "se")
    assert clear.boot_low > 0 and clear.p_value < 0.05
    assert verdict(clear).startswith("SRM − SE: +3.") and "SRM better than SE" in verdict(clear)
    assert "SE worse than SRM" in verdict(paired_stats(B, B + 0.03 + np.arange(8) * 0.001, "se", "srm"))
    # a number that is neither good nor bad (reliance on style) is "higher"/"lower", never "better"
    assert "SRM higher than SE" in verdict(clear, sides=("higher", "lower"))
    assert "none" in verdict(paired_stats(A, B, "se", "none")).split(":")[0]


# --- pairing ---------------------------------------------------------------------------------------------------


def test_pairing_matches_on_seed_and_domain_exactly_and_lists_unmatched(tmp_path: Path) -> None:
    result_run(tmp_path, "srm", 0, 0.5, "sketch")
    result_run(tmp_path, "srm", 1, 0.6, "sketch")
    result_run(tmp_path, "srm", 0, 0.7, "photo")  # no se run on photo
    result_run(tmp_path, "se", 0, 0.4, "sketch")
    result_run(tmp_path, "se", 1, 0.5, "sketch")
    result_run(tmp_path, "se", 2, 0.5, "sketch")  # no srm seed 2
    frame = collect([tmp_path]).runs
    p = pair_runs(frame, "srm", "se")
    assert list(zip(p.pairs["seed"], p.pairs["test_domain"], strict=True)) == [("0", "sketch"), ("1", "sketch")]
    pairs = zip(p.pairs["run_a"], p.pairs["run_b"], strict=True)
    assert all(Path(ra).name.replace("srm", "se") == Path(rb).name for ra, rb in pairs)
    assert p.pairs["top1_a"].tolist() == [0.5, 0.6] and p.pairs["top1_b"].tolist() == [0.4, 0.5]
    assert sorted(Path(r).name for r in p.unmatched["run"]) == ["se-s2-sketch", "srm-s0-photo"]


def test_settings_beyond_the_axis_and_single_block_are_refused(tmp_path: Path) -> None:
    result_run(tmp_path / "a", "srm", 0, 0.5)
    result_run(tmp_path / "a", "se", 0, 0.4, lr=0.01)
    with pytest.raises(StyleclsError, match="spec.lr"):
        check_comparable(collect([tmp_path / "a"]).runs)
    result_run(tmp_path / "b", "srm", 0, 0.5)
    result_run(tmp_path / "b", "srm", 1, 0.5)
    with pytest.raises(StyleclsError, match=r"only one method \(srm\)"):
        check_comparable(collect([tmp_path / "b"]).runs)


# --- block presentation: defined once beside BLOCKS --------------------------------------------------------------


@pytest.mark.parametrize("presented", [True, False])
def test_a_block_registered_only_here_appears_correctly_in_every_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, presented: bool
) -> None:
    """A new block shows up in compare, the report's tables, figures and verdicts, ranked before the reference
    (so every difference reads block − none, never none − block), with no list to edit."""
    from stylecls import blocks, presentation
    from stylecls.compare import compare

    monkeypatch.setattr(blocks, "BLOCKS", dict(blocks.BLOCKS))
    monkeypatch.setattr(presentation, "PRESENTATION", dict(presentation.PRESENTATION))
    if presented:
        presentation.register_block("zeta", blocks.BLOCKS["se"], label="Zeta", rank=5)  # between SRM and SE
    else:
        blocks.BLOCKS["zeta"] = blocks.BLOCKS["se"]  # registered without a presentation: its name, before none
    zeta = "Zeta" if presented else "zeta"
    runs = sweep(tmp_path / "runs", blocks=("none", "zeta", "srm", "se"), domains=("sketch",))
    order = ["SRM", zeta, "SE"] if presented else ["SRM", "SE", zeta]
    _, markdown, _ = compare([runs])
    rows = [line.split("|")[1].strip() for line in markdown.splitlines() if line.startswith("| ")][1:]
    assert rows[:4] == [*order, "none"]
    assert rows[4:] == [f"SRM − {order[1]}", f"SRM − {order[2]}", "SRM − none", *(f"{b} − none" for b in order[1:])]
    files = write_report([runs], tmp_path / "report.html")
    g = files.report.groups[0]
    assert g.sections[0].tables["values"][1]["method"].tolist() == [*order, "none"]
    assert [v.split(":")[0] for v in g.verdicts] == rows[4:]
    legend = pd.read_csv(g.figures[0][1].with_suffix(".csv"))
    assert set(legend["method"]) == {"srm", "zeta", "se", "none"}
    assert "none − " not in files.html.read_text() and "none − " not in markdown


# --- the rendered report ---------------------------------------------------------------------------------------


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "img":
            self.srcs.append(dict(attrs).get("src") or "")
        self.tables += tag == "table"


def test_report_html_embeds_every_figure_and_markdown_links_files(tmp_path: Path) -> None:
    files = write_report([sweep(tmp_path / "runs")], tmp_path / "out" / "report.html")
    g = files.report.groups[0]
    assert [(s.a, s.b, s.n) for s in g.sections[0].stats] == [("srm", "se", 4), ("srm", "none", 4), ("se", "none", 4)]
    parser = _Images()
    parser.feed(files.html.read_text())
    assert len(parser.srcs) == len(g.figures) == 5
    for src in parser.srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for _, png in g.figures:
        assert png.is_file() and png.with_suffix(".csv").is_file()
    text = files.html.read_text()
    assert "standard error of the mean" in text and "n=2" in text and "SRM − SE: +5.0 points" in text
    assert "training-domain validation" in text and "None" not in text
    md = files.markdown.read_text()
    links = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert len(links) == 5 and all((files.markdown.parent / link).is_file() for link in links)
    paired = pd.read_csv(g.figures[1][1].with_suffix(".csv"))
    assert len(paired) == 12 and paired["difference"].round(6).tolist()[:4] == [5.0] * 4


def test_one_number_per_run_is_a_section_in_a_few_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the style lane's style-reliance section needs: a number per run -> per block mean ± SE, paired
    differences over seeds with intervals and verdicts, in every group of the report."""
    from stylecls.report import build

    def reliance(runs: pd.DataFrame, by: str, ci: str) -> build.Section:
        number = [0.3 + 0.1 * (b == "srm") + 0.01 * s for b, s in zip(runs["block"], runs["seed"], strict=True)]
        return build.number_section(runs.assign(reliance=number), "reliance", by, ci, "style reliance",
                                    "Share of cue-conflict images classified by style")

    monkeypatch.setattr(build, "EXTRA_SECTIONS", [reliance])
    files = write_report([sweep(tmp_path / "runs", blocks=("se", "srm"))], tmp_path / "r.html")
    section = files.report.groups[0].sections[-1]
    assert section.title == "style reliance" and section.stats[0].n == 4
    assert section.stats[0].mean == pytest.approx(0.1) and section.verdicts[0].startswith("SRM − SE: +10.0 points")
    assert section.tables["values"][1]["sketch"].tolist() == ["40.5 ± 0.5 (n=2)", "30.5 ± 0.5 (n=2)"]
    assert "style reliance" in files.html.read_text() and "Share of cue-conflict" in files.markdown.read_text()


def test_oracle_is_reported_beside_the_selected_accuracy(tmp_path: Path) -> None:
    files = write_report([sweep(tmp_path / "runs", blocks=("se", "srm"), oracle=[0.8, 0.5])], tmp_path / "r.html",
                         selections=("training-domain", "oracle"))
    g = files.report.groups[0]
    assert [s.title for s in g.sections] == ["training-domain validation",
                                             "test-domain oracle (an upper bound, not a result)"]
    assert g.runs["last_test"].tolist() == [0.5] * len(g.runs)  # the last epoch's, not the best epoch's
    curves = pd.read_csv(next(png for _, png in g.figures if png.stem == "training_curves").with_suffix(".csv"))
    assert curves["test_acc"].tolist() == [0.8, 0.5] * len(g.runs)
    assert g.sections[1].tables["values"][1]["sketch"].tolist() == ["50.0 ± 0.0 (n=2)"] * 2
    assert all(v.startswith("Oracle (upper bound): ") for v in g.sections[1].verdicts)


def test_multi_domain_runs_are_shown_per_domain_of_the_test_part(tmp_path: Path) -> None:
    files = write_report([sweep(tmp_path / "runs", blocks=("se", "srm"), domains=(None,))], tmp_path / "r.html")
    table = files.report.groups[0].sections[0].tables["values"][1]
    assert list(table.columns) == ["method", "photo", "sketch", "all runs"]
    assert table.iloc[0].tolist() == ["SRM", "55.5 ± 0.5 (n=2)", "35.5 ± 0.5 (n=2)", "45.5 ± 0.5 (n=2)"]
    data = pd.read_csv(files.report.groups[0].figures[0][1].with_suffix(".csv"))
    assert len(data) == 8 and set(data["where"]) == {"photo", "sketch"}


def test_cli_report_and_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from stylecls.cli import main

    runs = sweep(tmp_path / "runs", blocks=("se", "srm"), seeds=(0, 1, 2), domains=("sketch", "photo"))
    monkeypatch.setattr(sys, "argv", ["stylecls", "report", str(runs)])
    main()
    assert (runs / "report.html").is_file() and (runs / "report.md").is_file()
    assert "SRM − SE: +5.0 points" in capsys.readouterr().out
    one = tmp_path / "one"
    result_run(one, "srm", 0, 0.5)
    monkeypatch.setattr(sys, "argv", ["stylecls", "report", str(one)])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2 and "only one method" in capsys.readouterr().err
    (tmp_path / "bare" / "r").mkdir(parents=True)
    write_result(tmp_path / "bare" / "r", {"seed": 0, "model": {}, "data": {}}, {})
    (tmp_path / "bare" / "r" / "eval" / "metrics.json").unlink()
    monkeypatch.setattr(sys, "argv", ["stylecls", "report", str(tmp_path / "bare")])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2 and "no usable evaluation" in capsys.readouterr().err


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
#: Marks every <img> with its rendered width once the page has loaded (0: not decoded / broken).
CHECK = """<script>window.addEventListener("load", () => { for (const img of document.images)
  img.setAttribute("data-rendered", img.complete ? img.naturalWidth : 0);
  document.body.setAttribute("data-images", document.images.length); });</script>"""


def _browser(*args: str) -> subprocess.CompletedProcess:
    assert BROWSER is not None
    return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=15000", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(BROWSER is None and not os.environ.get("CI"),
                    reason="no headless browser (chromium/chrome) installed; CI installs Debian's chromium")
def test_report_renders_every_figure_in_a_headless_browser(tmp_path: Path) -> None:
    """report.html in a real browser: every figure decodes to an image, and the screenshot is not blank."""
    assert BROWSER is not None, "CI must have chromium (.ci/run installs it)"
    files = write_report([sweep(tmp_path / "runs", blocks=("se", "srm"))], tmp_path / "report.html",
                         selections=("training-domain", "lodo", "oracle"))
    checked = tmp_path / "checked.html"
    checked.write_text(files.html.read_text().replace("</body>", CHECK + "</body>"))
    dom = _browser("--dump-dom", checked.as_uri()).stdout
    rendered = [int(w) for w in re.findall(r'data-rendered="(\d+)"', dom)]
    assert f'data-images="{len(files.report.groups[0].figures)}"' in dom
    assert len(rendered) == 5 and all(w > 100 for w in rendered), rendered
    assert "SRM − SE" in dom and "test-domain oracle" in dom
    shot = tmp_path / "report.png"
    _browser(f"--screenshot={shot}", "--window-size=1200,2400", files.html.as_uri())
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape == (2400, 1200) and (pixels < 200).mean() > 0.02  # text and figures, not a blank page


@pytest.mark.slow
def test_report_on_tiny_trained_runs_through_the_cli(tmp_path: Path, demo_env: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Train, evaluate and report two tiny demo runs (none, srm; same seed) with the commands a user types."""
    from stylecls.cli import main

    def cli(*args: str) -> None:
        monkeypatch.setattr(sys, "argv", ["stylecls", *args])
        main()

    for block in ("none", "srm"):
        cli("train", "--block", block, "--epochs", "1", "--img-size", "32", "--batch-size", "16", "--limit-train",
            "32", "--limit-val", "16", "--workers", "0", "--device", "cpu", "--no-progress", "--out",
            str(tmp_path / "runs"), "--name", f"tiny-{block}")
        cli("evaluate", str(tmp_path / "runs" / f"tiny-{block}"), "--workers", "0", "--device", "cpu")
    cli("report", str(tmp_path / "runs"), "--out", str(tmp_path / "report.html"))
    parser = _Images()
    parser.feed((tmp_path / "report.html").read_text())
    assert len(parser.srcs) == 5 and all(s.startswith("data:image/png;base64,") for s in parser.srcs)
    assert "SRM − none" in (tmp_path / "report.md").read_text()
    assert "1 pair: too few pairs" in (tmp_path / "report.md").read_text()
