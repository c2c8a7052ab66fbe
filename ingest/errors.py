"""One exception type per domain failure; the CLI and the API map them to messages in one place."""


class StrideError(Exception):
    """A failure the user can fix; ``str(err)`` is a one-line message that names the fix."""


class CorpusMissing(StrideError):
    pass


class CorpusFileInvalid(StrideError):
    pass


class DuplicateArticleId(StrideError):
    pass


class ModelMissing(StrideError):
    pass


class ModelMismatch(StrideError):
    pass


class IndexMissing(StrideError):
    pass


class PlantedInstructions(StrideError):
    """``stride ingest --strict`` found instruction-like text in an article."""


class IndexUnavailable(StrideError):
    """The index's store cannot be reached right now (a Chroma server that is down): transient."""
