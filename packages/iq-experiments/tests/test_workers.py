import os

import pytest

from opsin.iq.datasets import DSModifier, DSModifier_jpg
from opsin.iq.metrics import SharpnessMetric


def test_one_name_for_the_worker_count_and_the_originals_aliases():
    assert DSModifier().workers == 1
    assert DSModifier(workers=3).workers == 3
    assert DSModifier_jpg(params={"quality": 50}, n_jobs=2).workers == 2  # the original's spelling
    assert SharpnessMetric(None).workers == (os.cpu_count() or 1)  # default: every CPU, as the original's njobs=-1
    assert SharpnessMetric(None, njobs=2).workers == 2
    assert SharpnessMetric(None, "jpg", ["RER"], True, 3).workers == 3  # positional, where the original had njobs


@pytest.mark.parametrize("kwargs", [{"workers": 0}, {"n_jobs": 0}, {"workers": 2, "n_jobs": 3}])
def test_bad_worker_counts(kwargs):
    with pytest.raises(ValueError, match="workers"):
        DSModifier(**kwargs)
