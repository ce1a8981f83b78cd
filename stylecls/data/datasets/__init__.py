"""The built-in datasets, one module each, named like the dataset.

Each module declares its dataset with ``DATASET = register(DatasetDef(...))`` (see
:mod:`stylecls.data.registry`); every module here is imported on the first look at
``stylecls.data.DATASETS``, so a new dataset is one new module here and nothing else.
"""
