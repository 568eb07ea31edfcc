"""Perplexity and KL divergence by llama-perplexity's formulas, checked against direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sizewise.core.quant.quality import QualityTally, ReferenceRows, kld_rows, log_softmax, plan_chunks


def _peaked_logits(rng, n, vocab, sharpness=6.0):
    """Logits shaped like a trained model's: a few likely tokens, a long tail."""
    return (rng.standard_normal((n, vocab)) * sharpness).astype(np.float32)


def _full_kl(p_logp, q_logp):
    p = np.exp(p_logp)
    return (p * (p_logp - q_logp)).sum(axis=1)


def test_log_softmax_rows_are_distributions():
    rng = np.random.default_rng(1)
    lp = log_softmax(_peaked_logits(rng, 5, 1000))
    assert np.allclose(np.exp(lp).sum(axis=1), 1.0, atol=1e-12)


def test_perplexity_and_its_error_follow_llama_perplexity():
    rng = np.random.default_rng(2)
    lp = log_softmax(_peaked_logits(rng, 300, 500))
    targets = rng.integers(0, 500, size=300).astype(np.int32)
    tally = QualityTally()
    tally.add(lp[:100], targets[:100])
    tally.add(lp[100:], targets[100:])
    fig = tally.result()
    nll = -lp[np.arange(300), targets].astype(np.float64)
    # perplexity.cpp: nll/=count; nll2/=count; ppl=exp(nll); err = sqrt((nll2-nll^2)/(count-1)) * ppl
    mean, mean2 = nll.mean(), (nll * nll).mean()
    assert fig.ppl == pytest.approx(math.exp(mean), rel=1e-6)  # log-probabilities are float32
    assert fig.ppl_err == pytest.approx(math.sqrt((mean2 - mean * mean) / 299) * math.exp(mean), rel=1e-5)
    assert fig.tokens_scored == 300 and fig.kld_mean is None


def test_kld_of_a_model_against_itself_is_zero_and_top_tokens_all_agree():
    rng = np.random.default_rng(3)
    lp = log_softmax(_peaked_logits(rng, 50, 2000))
    targets = rng.integers(0, 2000, size=50).astype(np.int32)
    ref = ReferenceRows.from_logp(lp, targets, k=64)
    tally = QualityTally()
    tally.add(lp, targets, ref)
    fig = tally.result()
    assert fig.kld_mean == pytest.approx(0.0, abs=1e-6)
    assert fig.same_top_pct == 100.0
    assert fig.delta_p_mean == pytest.approx(0.0, abs=1e-7)
    assert fig.reference_ppl == pytest.approx(fig.ppl, rel=1e-6)


@pytest.mark.parametrize("sharpness", [3.0, 6.0])
@pytest.mark.parametrize("noise", [0.05, 0.3, 1.0])
def test_head_plus_drawn_tail_kld_is_within_a_few_percent_of_the_full_vocabulary_kld(noise, sharpness):
    """Flat distributions (sharpness 3: the 128 likeliest of 4,000 tokens hold about half the mass) are
    where a top-k-only form fails; the drawn tail keeps the estimate close."""
    rng = np.random.default_rng(4)
    logits = _peaked_logits(rng, 400, 4000, sharpness=sharpness)
    p = log_softmax(logits)
    q = log_softmax(logits + rng.standard_normal(logits.shape).astype(np.float32) * noise)
    targets = rng.integers(0, 4000, size=400).astype(np.int32)
    approx = kld_rows(ReferenceRows.from_logp(p, targets), q)
    full = _full_kl(p, q)
    assert approx.mean() == pytest.approx(full.mean(), rel=0.03)


def test_drawn_tail_is_deterministic_and_mass_is_exact():
    rng = np.random.default_rng(5)
    lp = log_softmax(_peaked_logits(rng, 20, 3000, sharpness=3.0))
    t = rng.integers(0, 3000, size=20).astype(np.int32)
    a, b = ReferenceRows.from_logp(lp, t), ReferenceRows.from_logp(lp, t)
    assert np.array_equal(a.tail_ids, b.tail_ids)
    head_mass = np.exp(a.top_logp.astype(np.float64)).sum(axis=1)
    assert np.allclose(a.tail_mass + head_mass, 1.0, atol=1e-9)
    for r in range(20):
        assert not np.isin(a.tail_ids[r], a.top_ids[r]).any()


def test_same_top_and_delta_p_count_what_they_say():
    # Two tokens of a 4-word vocabulary; the model disagrees with the reference on the first one only.
    ref_lp = np.log(np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1]]))
    mod_lp = np.log(np.array([[0.2, 0.5, 0.2, 0.1], [0.1, 0.7, 0.1, 0.1]]))
    targets = np.array([0, 1], dtype=np.int32)
    tally = QualityTally()
    tally.add(mod_lp, targets, ReferenceRows.from_logp(ref_lp, targets, k=4))
    fig = tally.result()
    assert fig.same_top_pct == 50.0
    assert fig.delta_p_mean == pytest.approx(((0.2 - 0.7) + (0.7 - 0.6)) / 2)
    assert fig.kld_mean == pytest.approx(_full_kl(ref_lp, mod_lp).mean(), rel=1e-6)  # k = vocabulary: exact


def test_chunk_plan_is_llama_perplexitys():
    plan = plan_chunks(5902, 512, None)
    assert (plan.chunks, plan.first_scored, plan.scored_per_chunk) == (11, 256, 255)
    assert plan_chunks(5902, 512, 4).chunks == 4
    assert plan_chunks(5902, 512, 400).chunks == 11
    with pytest.raises(ValueError, match="needs at least 1,024"):
        plan_chunks(1000, 512, None)
    with pytest.raises(ValueError, match="too small"):
        plan_chunks(1000, 8, None)


def test_empty_tally_says_so():
    with pytest.raises(ValueError, match="no tokens"):
        QualityTally().result()
