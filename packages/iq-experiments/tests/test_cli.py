import json

import pytest
from _synth import edge_image, flat_field
from click.testing import CliRunner

from opsin.iq.cli import main
from opsin.iq.io import write_image


@pytest.mark.parametrize("cmd", ["modify", "sanity", "stats", "snr", "sharpness"])
def test_help(cmd):
    res = CliRunner().invoke(main, [cmd, "--help"])
    assert res.exit_code == 0
    assert "Usage" in res.output


def test_modify_and_sanity_and_stats(geo_ds, tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["modify", str(geo_ds), "-m", "jpg", "-p", "quality=40"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["data_path"].endswith("ds_geo_dataset#jpg40_modifier")
    assert out["params"] == {"quality": 40, "modifier": "jpg40_modifier"}
    res = runner.invoke(main, ["sanity", str(geo_ds), "--out-dir", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["problems"] == []
    res = runner.invoke(
        main, ["stats", str(geo_ds), "--out-dir", str(tmp_path / "st"), "--out", str(tmp_path / "st.json")]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "st.json").read_text())["stats"][1]["obj"] == "geojson"
    res = runner.invoke(main, ["modify", str(geo_ds), "-m", "jpg", "-p", "quality"])
    assert res.exit_code != 0
    assert "KEY=VALUE" in res.output


def test_snr_and_sharpness_json(tmp_path):
    write_image(tmp_path / "flat.png", flat_field(100, 5))
    res = CliRunner().invoke(main, ["snr", str(tmp_path / "flat.png"), "--bias-correction", "--per-image"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["snr_mean"] == pytest.approx(20, rel=0.02)
    assert "flat.png" in out["images"]
    write_image(tmp_path / "edge.png", edge_image(1.0))
    res = CliRunner().invoke(main, ["sharpness", str(tmp_path / "edge.png"), "--esf-model", "erf", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["RER_X"] == pytest.approx(0.383, abs=0.01)
