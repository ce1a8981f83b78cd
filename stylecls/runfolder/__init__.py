"""A run folder is the one interface between training and everything that reads results.

:class:`RunFolder` reads and writes a run's record, status, split rows, per-epoch metrics and checkpoints;
its :attr:`~RunFolder.evaluations` (:class:`Evaluations`) hold what ``stylecls evaluate`` made, and say which
evaluation a results reader may use. The file names live in :mod:`stylecls.runfolder.files` alone, so every
command reads a run the same way and a damaged file is the same clear error everywhere.
"""

from stylecls.runfolder.evaluations import (
    EVALUATED_PARTS,
    Evaluations,
    EvaluationTables,
    MissingEvaluation,
    UnusableEvaluation,
)
from stylecls.runfolder.files import CHECKPOINTS
from stylecls.runfolder.folder import RunFolder, find_run_folders, is_run_folder
from stylecls.runfolder.tables import EPOCH_COLUMNS, SPLIT_COLUMNS

__all__ = [
    "CHECKPOINTS", "EPOCH_COLUMNS", "EVALUATED_PARTS", "SPLIT_COLUMNS", "EvaluationTables", "Evaluations",
    "MissingEvaluation", "RunFolder", "UnusableEvaluation", "find_run_folders", "is_run_folder",
]  # fmt: skip
