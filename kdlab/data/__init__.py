"""Datasets as in-memory tensors (layer 1; see docs/ARCHITECTURE.md).

* ``dataset``: the ``Dataset`` container, the ``DATASETS`` registry, ``load_dataset``, shared normalisation.
* ``idx``: the IDX reader (MNIST's file format). ``sources``: where those files come from (folders, download).
* ``images``: digits, MNIST, Fashion-MNIST. ``toys``: the 2-D sets (moons, circles, spirals, ...).
"""
from kdlab.data.dataset import DATASETS, Dataset, dataset_names, load_dataset, train_size
from kdlab.data import images, toys  # noqa: F401  (registers the datasets, in this order)

__all__ = ["DATASETS", "Dataset", "dataset_names", "load_dataset", "train_size"]
