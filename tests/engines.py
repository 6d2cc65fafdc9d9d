"""Scripted generator engines for tests that need a known model output
(configured by dotted path in RAG_GENERATOR_ENGINE, like any engine)."""


class ScriptedEngine:
    """Streams `pieces()` (by default the class's `script`); counts a token per word."""

    context_tokens = 2048
    script: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings):
        return cls()

    def count_tokens(self, text):
        return len(text.split())

    def stream(self, messages, *, max_new_tokens, stop=()):
        yield from self.pieces()

    def pieces(self):
        return self.script


class FeeEngine(ScriptedEngine):
    """Answers the fee question of tests/adversarial with a citation."""

    script = ("The Gold card ", "has an annual fee ", "of 95 euros [1].")


class SlowFeeEngine(FeeEngine):
    """FeeEngine at a model's pace: PAUSE seconds a token, TOKENS tokens
    (the word tokens of its script, then the citation)."""

    PAUSE = 0.2
    TOKENS = 15

    def pieces(self):
        import time

        for _ in range(self.TOKENS - 1):
            time.sleep(self.PAUSE)
            yield "fee "
        yield "of 95 euros [1]."


class ModelEchoEngine(ScriptedEngine):
    """Records the model it was built for (settings.RAG_GENERATOR_MODEL as
    get_engine passes it): which generator version serves."""

    def __init__(self, model):
        self.model_path = model

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.RAG_GENERATOR_MODEL)
