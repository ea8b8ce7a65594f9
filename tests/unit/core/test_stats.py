"""p-values, multiple-testing adjustment and Pearson's r: checked against statsmodels and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from statsmodels.stats.multitest import multipletests

from privfair.core.stats import adjust_p_values, bootstrap_p_value, pearson_with_ci


@pytest.mark.parametrize("method, reference", [("holm", "holm"), ("benjamini_hochberg", "fdr_bh")])
def test_adjustments_equal_statsmodels_and_keep_nan(method, reference):
    p = np.random.default_rng(0).random(25) ** 3
    with_nan = np.r_[p[:10], np.nan, p[10:]]
    adjusted = adjust_p_values(with_nan, method)
    assert np.isnan(adjusted[10])
    np.testing.assert_allclose(np.delete(adjusted, 10), multipletests(p, method=reference)[1])
    with pytest.raises(ValueError, match="bonferroni"):
        adjust_p_values(p, "bonferroni")


def test_bootstrap_p_value_is_a_two_sided_z_test():
    rng = np.random.default_rng(1)
    resamples = rng.normal(0.0, 0.1, 5000)
    assert bootstrap_p_value(0.196, resamples) == pytest.approx(0.05, abs=0.005)
    assert bootstrap_p_value(-0.196, resamples) == pytest.approx(bootstrap_p_value(0.196, resamples))
    assert bootstrap_p_value(0.0, resamples) == pytest.approx(1.0)
    assert np.isnan(bootstrap_p_value(0.1, [np.nan, 0.2]))
    assert np.isnan(bootstrap_p_value(0.1, [0.1] * 50))  # no spread: no evidence either way


def test_pearson_equals_scipy_and_says_why_when_undefined():
    x, y = np.arange(8.0), np.array([1, 3, 2, 5, 4, 6, 8, 7.0])
    result = pearson_with_ci(x, y, ci=0.9)
    reference = pearsonr(x, y)
    assert result["r"] == pytest.approx(reference.statistic) and result["p_value"] == pytest.approx(reference.pvalue)
    assert (result["r_ci_low"], result["r_ci_high"]) == pytest.approx(tuple(reference.confidence_interval(0.9)))
    assert pearson_with_ci([1, 2], [3, 4])["reason"] == "needs at least 3 points, has 2"
    assert pearson_with_ci([1, 2, 3], [5, 5, 5])["reason"] == "a variable is constant"
