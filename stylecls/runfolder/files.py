"""The names of a run folder's files: the only module that spells them.

Layout (``runs/<name>/``)::

    config.json    schema_version, the resolved RunSpec, runtime, versions, data summary  (written once)
    status.json    not started / running / interrupted / failed / done, epoch, best epoch  (``done`` last)
    split.csv      the exact catalog rows: path (relative to the data root), label, class_name, domain,
                   split, part (train/val/test)
    metrics.csv    one row per epoch
    last.pt        latest checkpoint (model, optimizer, scheduler, scaler, epoch, RNG states)
    best.pt        checkpoint with the best validation accuracy
    eval/          the selected evaluation (reported part, best.pt): metrics.json, predictions.csv,
                   per_class.csv, confusion.csv, per_domain.csv, per_class_domain.csv and figures;
                   eval/<part>-<checkpoint>[-<domain>]/: any other evaluation (never replaces the selected one)
    inspect/, style_test/, tb/    stylecls inspect, stylecls style-test, TensorBoard event files
"""

CONFIG = "config.json"
STATUS = "status.json"
SPLIT = "split.csv"
EPOCHS = "metrics.csv"
EVAL = "eval"
EVAL_RECORD = "metrics.json"
PREDICTIONS = "predictions.csv"
PER_CLASS = "per_class.csv"
CONFUSION = "confusion.csv"
PER_DOMAIN = "per_domain.csv"
PER_CLASS_DOMAIN = "per_class_domain.csv"
INSPECT = "inspect"
STYLE_TEST = "style_test"
TENSORBOARD = "tb"
CHECKPOINTS = ("best", "last")
