"""Loads the treatment zones and the clinical reference values, unless they are already there.

Loading only into an empty table keeps every later admin change (a renamed zone, a new rule-set
version) instead of overwriting it at the next deployment.
"""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from planner.models import ConsentText, RuleSet, TreatmentZone

FIXTURES = (
    (TreatmentZone, "treatment_zones"),
    (RuleSet, "reference_values"),
    (ConsentText, "consent_texts"),
)


class Command(BaseCommand):
    help = "Load the zone and reference-value fixtures into an empty database (idempotent)."

    def handle(self, *args, **options) -> None:
        for model, fixture in FIXTURES:
            if model.objects.exists():
                self.stdout.write(f"{fixture}: already present, left as is")
                continue
            call_command("loaddata", fixture, verbosity=0)
            self.stdout.write(f"{fixture}: loaded")
