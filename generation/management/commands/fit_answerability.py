import json

from django.core.management.base import BaseCommand, CommandError

from generation import fitting, gate_versions
from generation.models import AnswerabilityVersion


class Command(BaseCommand):
    help = (
        "Fit the 'not in the documents' decision on the indexed corpus: questions about facts of its passages, "
        "answerable and made unanswerable (the fact's passage removed, the subject swapped for a word the corpus "
        "never uses), judged by the real retrieval and evidence scoring; held-out documents judge the fit against "
        "the serving gate, and it decides answers when it does no worse. Runs here and now (the background refit "
        "runs the same). --list lists the versions; --switch NAME switches one in (packaged: the packaged gate)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--list", action="store_true", help="List the answerability versions.")
        parser.add_argument("--switch", metavar="NAME", help="Decide with version NAME (a1, ...) or 'packaged'.")
        parser.add_argument("--json", action="store_true", help="Print the new version's metrics as JSON.")

    def handle(self, *args, list: bool, switch, json: bool, **options):
        if list:
            for v in AnswerabilityVersion.objects.all():
                mark = "*" if v.is_active else " "
                self.stdout.write(
                    f"{mark} {v.name:6} {v.status:9} precision {v.heldout('precision')} recall {v.heldout('recall')} "
                    f"abstention {v.heldout('abstention')}  {v.reason}"
                )
            return
        if switch:
            if switch == "packaged":
                gate_versions.deactivate()
                self.stdout.write("The packaged gate decides.")
                return
            version = AnswerabilityVersion.objects.filter(name=switch).first()
            if version is None:
                raise CommandError(f"No answerability version {switch!r}.")
            problem = gate_versions.refusal(version)
            if problem:
                raise CommandError(problem)
            gate_versions.activate(version)
            self.stdout.write(f"Answerability model {switch} decides.")
            return
        version = fitting.start(
            "asked from the command line",
            progress=lambda stage, done, total: self.stderr.write(f"\r{stage} {done}/{total}   ", ending=""),
        )
        self.stderr.write("")
        if version.status == AnswerabilityVersion.Status.FAILED:
            raise CommandError(f"The fit failed: {version.error}")
        if json:
            self.stdout.write(_json(version.metrics))
            return
        decision = version.metrics["decision"]
        held = version.metrics["fitted"]["heldout"]
        self.stdout.write(
            f"{version.name}: held-out precision {held['precision']}, recall {held['recall']}, abstention "
            f"{held['abstention']} (balanced {decision['fitted_balanced']} against {decision['serving_balanced']} "
            f"for {decision['serving_name']}); "
            + ("it decides answers now." if decision["switch"] else "not switched in.")
        )


def _json(value) -> str:
    return json.dumps(value, indent=1)
