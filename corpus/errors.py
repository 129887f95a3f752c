"""One root error for every user mistake, and one class below it per stage.

The command line turns any ``GuitarlabError`` into a one-line message and exit code 1,
so the message must name the file or field and say what to do.
"""

import errno

# what a write (or a reservation of disk) fails with when the disk, the quota or the
# file size limit is full: the user frees space, not fixes input
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


class GuitarlabError(Exception):
    """A user-facing problem: bad input, a missing file, an unknown name."""


class ManifestError(GuitarlabError):
    """The manifest or a corpus path is wrong."""


class ManifestConflict(ManifestError):
    """The manifest changed between reading it and writing an edit (a stale version)."""


class AudioFileError(GuitarlabError):
    """An audio file cannot be read, or is not what a stage needs."""


class RecorderError(GuitarlabError):
    """Devices, streams, takes and level checks."""


class AugmentError(GuitarlabError):
    """Tone presets and rendering."""


class DatasetError(GuitarlabError):
    """Windowing, splits and dataset folders."""


class TrainError(GuitarlabError):
    """Models, training runs, evaluation and prediction."""
