"""``manage.py check_plan FILE|-``: validates a plan given as JSON against the reference values.

Exit status: 0 no error finding, 1 at least one error finding, 2 the input is not a valid plan
(one line on stderr naming the field; nothing on stdout).
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from planner import engine, rules
from planner.models import TreatmentZone

EXIT_OK, EXIT_ERRORS, EXIT_INVALID = 0, 1, 2


class Command(BaseCommand):
    help = "Check a plan (JSON file, or - for stdin) and print its findings as JSON."
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="Path to the plan JSON, or - to read standard input.")

    def handle(self, *args, file: str, **options) -> None:
        try:
            plan = rules.plan_from_dict(_load(file), _zone_regions())
        except rules.InvalidPlan as invalid:
            self._refuse(str(invalid))
        findings = rules.evaluate(plan, engine.snapshot_for(engine.current_rule_set()))
        ok = not rules.has_errors(findings)
        self.stdout.write(json.dumps({"ok": ok, "findings": [f.as_dict() for f in findings]}))
        if not ok:
            sys.exit(EXIT_ERRORS)

    def _refuse(self, message: str) -> None:
        self.stderr.write(f"check_plan: {message}")
        sys.exit(EXIT_INVALID)


def _load(file: str) -> object:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise rules.InvalidPlan(
            "file", f"cannot read {file!r} ({error.__class__.__name__})"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise rules.InvalidPlan(
            "plan", f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None


def _zone_regions() -> dict[str, str]:
    return dict(TreatmentZone.objects.filter(active=True).values_list("code", "region"))
