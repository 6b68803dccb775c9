"""The check_plan command: the JSON contract of DESIGN.md, its exit codes and error lines."""

import io
import json

import pytest
from django.core.management import call_command

from planner.choices import ReferenceKey
from planner.models import ReferenceValue, RuleSet

pytestmark = pytest.mark.django_db

CONTRACT_EXAMPLE = {
    "goal": "rejuvenation",
    "indications": ["fine_lines"],
    "combined_with": ["prf"],
    "injections": [
        {
            "zone": "UPPER_LIP",
            "volume_ml": "0.3",
            "instrument": "needle",
            "gauge": 27,
            "depth": "subdermis",
            "technique": "retrograde",
        }
    ],
}


@pytest.fixture(autouse=True)
def reference_data():
    call_command("load_reference_data", stdout=io.StringIO())


def run(plan, tmp_path, capsys) -> tuple[int, str, str]:
    path = tmp_path / "plan.json"
    path.write_text(plan if isinstance(plan, str) else json.dumps(plan))
    code = 0
    try:
        call_command("check_plan", str(path))
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def with_injection(**changes) -> dict:
    plan = json.loads(json.dumps(CONTRACT_EXAMPLE))
    plan["injections"][0].update(changes)
    return plan


def test_the_contract_example_passes_with_exit_0(tmp_path, capsys):
    code, out, err = run(CONTRACT_EXAMPLE, tmp_path, capsys)
    assert code == 0
    assert json.loads(out) == {"ok": True, "findings": []}
    assert err == ""


def test_an_error_finding_exits_1_with_the_contract_shape(tmp_path, capsys):
    code, out, _ = run(with_injection(volume_ml="0.6"), tmp_path, capsys)
    assert code == 1
    result = json.loads(out)
    assert result["ok"] is False
    assert result["findings"] == [
        {
            "rule": "ZONE_VOLUME_ABOVE_MAX",
            "severity": "error",
            "zone": "UPPER_LIP",
            "injection": None,
            "message": result["findings"][0]["message"],
            "sources": [5],
        }
    ]
    assert "0.6 mL" in result["findings"][0]["message"]
    assert "0.2\u20130.5 mL" in result["findings"][0]["message"]  # an en dash, as in print


def test_warnings_alone_exit_0_and_are_printed(tmp_path, capsys):
    code, out, _ = run(with_injection(technique="fanning"), tmp_path, capsys)
    result = json.loads(out)
    assert code == 0
    assert result["ok"] is True
    assert [(f["rule"], f["severity"], f["injection"]) for f in result["findings"]] == [
        ("TECHNIQUE_NOT_RETROGRADE", "warning", 0)
    ]


def test_it_reads_the_plan_from_standard_input(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(with_injection(gauge=22))))
    with pytest.raises(SystemExit) as exit_:
        call_command("check_plan", "-")
    assert exit_.value.code == 1
    assert json.loads(capsys.readouterr().out)["findings"][0]["rule"] == "GAUGE_TOO_LARGE_BORE"


def test_it_uses_the_reference_values_in_force(tmp_path, capsys):
    """An admin who raises the maximum to 0.6 mL changes the verdict, without a code change."""
    old = RuleSet.current()
    new = RuleSet.objects.create(version=old.version + 1, reason="Clinic protocol review")
    for value in old.values.all():
        value.pk, value.rule_set = None, new
        if value.key == ReferenceKey.ZONE_VOLUME_ML:
            value.maximum = "0.6"
        value.save()
    assert ReferenceValue.objects.filter(rule_set=new).count() == len(ReferenceKey.values)
    code, out, _ = run(with_injection(volume_ml="0.6"), tmp_path, capsys)
    assert (code, json.loads(out)) == (0, {"ok": True, "findings": []})


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ("{not json", "plan: not valid JSON"),
        ("[]", "plan: must be a JSON object"),
        (with_injection(zone="NOSE_TIP"), "injections[0].zone: unknown zone code 'NOSE_TIP'"),
        (with_injection(volume_ml="-0.2"), "injections[0].volume_ml"),
        (with_injection(volume_ml="abc"), "injections[0].volume_ml"),
        (with_injection(depth="subfascial"), "injections[0].depth"),
        (with_injection(instrument="trocar"), "injections[0].instrument"),
        (with_injection(gauge=27.5), "injections[0].gauge"),
        (with_injection(gauge="27"), "injections[0].gauge"),
        ({k: v for k, v in CONTRACT_EXAMPLE.items() if k != "goal"}, "goal"),
        ({k: v for k, v in CONTRACT_EXAMPLE.items() if k != "injections"}, "injections"),
    ],
)
def test_an_invalid_plan_exits_2_with_one_line_naming_the_field(plan, expected, tmp_path, capsys):
    code, out, err = run(plan, tmp_path, capsys)
    assert code == 2
    assert out == ""
    assert expected in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_file_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        call_command("check_plan", str(tmp_path / "absent.json"))
    assert exit_.value.code == 2
    assert "file: cannot read" in capsys.readouterr().err
