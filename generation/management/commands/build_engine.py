from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generation import trtllm


class Command(BaseCommand):
    help = (
        "Build the TensorRT-LLM engine that trtllm-serve serves in the GPU profile "
        "(needs an NVIDIA GPU, CUDA and tensorrt_llm; --dry-run shows the steps anywhere)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint", help="Hugging Face checkpoint folder (default: the packaged GGUF, converted)."
        )
        parser.add_argument(
            "--engine-dir",
            default=str(settings.RAG_TRTLLM_ENGINE_DIR),
            help="Where the engine is written (default: RAG_TRTLLM_ENGINE_DIR).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Print the steps; build nothing.")
        parser.add_argument("--force", action="store_true", help="Rebuild an engine that is there already.")

    def handle(self, *args, checkpoint, engine_dir, dry_run, force, **options):
        plan = trtllm.EnginePlan.for_generator(
            engine_dir,
            context_tokens=settings.RAG_GENERATOR_CONTEXT,
            max_new_tokens=settings.RAG_GENERATOR_MAX_TOKENS,
            max_batch_size=settings.RAG_TRTLLM_MAX_BATCH_SIZE,
        )
        try:
            trtllm.prepare(
                plan,
                checkpoint=checkpoint,
                gguf_path=settings.RAG_GENERATOR_MODEL,
                dry_run=dry_run,
                force=force,
                echo=self.stdout.write,
            )
        except trtllm.EngineBuildError as error:
            raise CommandError(str(error)) from None
