"""The speed model: generation and prompt-processing speed of a GGUF on a device, from its header alone.

Generation is memory-bound (BRIEF §9): each token reads every weight it uses once, plus the KV cache filled
so far, so ``t_token = t_fixed + n_layer × t_layer + Σ_type bytes_type / bw_type + attention(depth)``.
Attention over the cache has three measured parts: its bytes (``kv_bytes / bw_kv``), its work (``attn_flops /
F_attn``: every query head multiplies against its group's cached keys and values, so grouped-query heads that
share a KV head read the same bytes but each does its own work) and a cost per cached cell (``cells / rate``: the
mask llama.cpp builds for every cell, once per token whatever the layers and heads). Every part counts the cells
llama.cpp attends, in whole steps of 256 (``attended_cells``), not the depth. Calibration's shapes vary the KV heads'
grouping (4:1, 2:1, 5:1) and the heads' width (one shape's are 128 wide, like Llama's and Qwen2.5-1.5B's, the
others 64) so the fit can tell the three apart. With every calibration head 64 wide, Qwen2.5-1.5B came out 0.80-0.84x
at depth 4096 (an Intel Xeon, one thread); refitted on the same machine with the 128-wide shape, 0.90-0.99. A fourth
column, a cost per score (a query head against a cell), fitted the measurements no better and predicted 13 of 18
benchmark cases within 15 % against 15 of 18 without it, so it is not kept: three shapes tell three columns apart.
A profile without the last two (an estimate, a calibration with too few points to tell them apart) times the bytes
alone.
Measured efficiency is not constant — small models lose a larger share to work outside the matmuls — hence
fixed terms instead of one efficiency factor; the per-layer one is there because on a CPU each of a layer's
graph nodes costs a thread synchronisation, so a deep narrow model (SmolLM2-135M: 30 layers) is slower than
its bytes alone say. On a CPU the dequantization work differs per weight type (Q2_K reads fewer bytes than
Q4_K but decodes slower), so a profile carries an effective bandwidth per tensor type and per type family
(fitted in fit.py): a type it never measured uses its family's figure, a family it never measured the
overall one. Per tensor type, not per file type: a file type's mix is not fixed — a small model's Q4_K_M is
mostly its Q6_K output matrix, and rows that are not whole 256-weight blocks fall back to Q5_0/Q4_0/Q8_0 (a
Qwen2.5-0.5B-shaped Q4_K_M is 60 % Q5_0), so per-file-type figures from calibration's small models predicted
such files 1.5-1.9x too fast.

Prompt processing is compute-bound: ``t_pp_token = c0 + n_layer × c_layer + flops / F + attn_flops / F_attn``
with ``flops ≈ 2 × active matmul parameters`` and ``F`` an effective FLOP/s measured per tensor type, then
family (F16 and Q6_K differ ~1.7×). The output matrix (vocab × n_embd: 20–40 % of a small model's parameters
with a 49152-token vocabulary) multiplies only the last token of each decode call — a prompt needs logits for
its last token alone — so it counts once per prompt, not per token: counting it per token predicted
SmolLM2-sized prompts ~1.3× too slow. Attention is apart, at its own rate (its matmuls read the F16 KV cache,
not the weights): without flash attention (the app's default) every token of a micro-batch multiplies against
every cell the batch can see — ``depth`` plus the whole micro-batch, causal mask or not — so it grows with
depth.

On a CPU a prompt's matrix is not read once per micro-batch but once per few tokens: ggml's own matmul and its
repacked k-quant kernels (Q4_K, Q2_K, Q4_0 on x86) walk the whole weight matrix for every block of 16 of the batch's
tokens (ggml-cpu.c's 16 × 16 blocks; repack.cpp's gemm over all rows per group of tokens), while llamafile's tinyBLAS,
which takes F32, F16, BF16, Q8_0 and Q5_0 on x86, walks the tokens for each few rows and so reads the weights once.
What of a matrix the core's L2 cache holds is read again from there; the rest comes again from the last-level cache
or memory. So ``reread_seconds`` adds, per prompt token, ``(matrix bytes − L2) / TOKENS_PER_PASS`` for each matrix of a
re-reading type, read at the bandwidth generation measured over all types (``bw_effective``): the walk's decoding
is in the FLOP rates already, since calibration's matrices are walked as often from the L2; it moves bytes only.
Per type, generation's figures for a type few of calibration's weights hold are noise (Q2_K's came out at 12-70
GB/s in ten calibrations, the overall one at 6.3-6.8), and the re-read of a Q2_K matrix would have moved with it.
Calibration's matrices are all under a 2 MB L2 in their k-quants (1024 × 2048 Q4_K: 1.2 MB), so their rates leave
this out, and Qwen2.5-1.5B's 1536 × 8960 ones (7.7 MB in Q4_K) were predicted 1.23-1.31x too fast at 512 tokens
without it (an Intel Xeon with 2 MB of L2, one thread). Refitting the four calibrations of a recorded speed-
benchmark run with the term (which calibration's points also subtract, fit.py) put its 18 prompt cases within
0.86-1.16 (18 within 0.75-1.25; 17 without, 0.90-1.28).
Measured on that machine alone: where the L2 size is unknown (a target, a GPU) the term is left out.

Known limit, measured (the same Intel Xeon, one thread, 512-token prompts, synthetic models of one layer shape
at two depths): a wide layer's prompt runs faster in a model small enough to stay in the last-level cache between
prompts than in a deeper one, for every type — 1536 × 8960 layers (Qwen2.5-1.5B's) took 530 → 718 µs a token per
layer at 2 → 8 layers in Q4_K_M, 496 → 693 in Q2_K, 699 → 1029 in Q8_0 and 391 → 528 in Q6_K; 896 × 4864 ones
(Qwen2.5-0.5B's) 284 → 380 in Q4_K_M and 272 → 370 in Q8_0; calibration's 1024 × 2048 layers 172 → 185 → 185 at
4 → 16 → 32 in Q4_K_M (232 → 255 → 255 in Q8_0). The speed model has no term for that: it predicts deep models,
which the ladder's are, and calibration's own models run within ~10 % of deep ones of their shape. Nor was the
pass length of the repacked kernels measured apart from ggml's 16 (an AVX2-only CPU's repacked gemm may take fewer
tokens per walk, and so read more again).

Mixture-of-experts: tensors named ``*_exps`` count ``expert_used_count / expert_count`` of their bytes and
parameters; attention, router and shared tensors count in full. The token-embedding table is read one row
per token, so it counts only when it doubles as the output matrix (tied embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sizewise.core.fit.memory_model import ModelShape, header_shape, kv_bytes_per_token
from sizewise.core.gguf.header import GGUFHeader, header_int, quantization_name
from sizewise.core.speed.profile import ATTN, CELLS, KV, SpeedProfile, type_family

# Tokens of a micro-batch per walk over a matrix in ggml's CPU matmuls that re-read it (see above).
TOKENS_PER_PASS = 16
# llamafile's tinyBLAS types on x86 (ggml-cpu/llamafile/sgemm.cpp): they read each weight once per matmul. Q4_0 and
# IQ4_NL are not among them here: with AVX2 they are repacked (CPU_REPACK), whose gemm re-reads as ggml's does.
READ_ONCE_TYPES = frozenset({"F32", "F16", "BF16", "Q8_0", "Q5_0"})
N_UBATCH = 512  # llama.cpp's (and the app's) default micro-batch: the attention span of a prompt's tokens
# llama.cpp's attention spans the KV cache in whole steps of KV_STEP cells, at least one step, never past the cache
# (llama_kv_cache::get_n_kv: the graph then stays the same across tokens and can be reused). Without flash
# attention the cells past the last used one are multiplied, masked and read like the others, so a token at depth 8
# costs what one at depth 255 does, and one at 513 what one at 767 does. Counting the depth itself put calibration's
# depth-8 point 248 cells short (on a 24-layer model about a third of its time) and the benchmark's context-512
# cases 240 short.
KV_STEP = 256


def attended_cells(used: int, size: int = 0) -> int:
    """Cells a decode's attention spans when ``used`` cells hold tokens (its own included), in a cache of
    ``size`` cells (0: large enough)."""
    cells = max(KV_STEP, -(-used // KV_STEP) * KV_STEP)
    return min(cells, size) if size > 0 else cells


@dataclass(frozen=True)
class ModelCost:
    """What one token costs a model, independent of the device."""

    n_layer: int
    weight_bytes: int  # weights read per generated token (active experts only)
    bytes_by_type: dict[str, int]  # by ggml tensor type name
    matmul_params: int  # active parameters a token multiplies through
    quant: str  # the file type (Q4_K_M …): picks the effective bandwidth and FLOP/s
    kv_full_bytes_per_token: int  # K+V bytes per cached token on full-attention layers
    kv_swa_bytes_per_token: int
    n_swa: int
    attn_flops_per_cached_token: int  # QK and softmax·V work per new token, per token already cached
    notes: tuple[str, ...] = field(default=())
    output_params: int = 0  # the output matrix's parameters (in matmul_params): multiplied once per prompt
    params_by_type: dict[str, int] = field(default_factory=dict)  # matmul_params by ggml tensor type
    output_type: str = ""  # the output matrix's tensor type
    scores_full_per_token: int = 0  # attention scores per cached token on full-attention layers (query heads)
    scores_swa_per_token: int = 0  # … on sliding-window layers
    attn_flops_per_score: int = 0  # QK and softmax·V work per score: 4 × head size
    cell_share: float = 1.0  # the share of the per-cell cost this part of a model pays (one device of a split)
    # (type, one matrix's bytes, how many such matrices a token multiplies: experts at their used share) of the
    # layers' weight matrices, for the re-reads of a CPU's prompt matmuls
    matrices: tuple[tuple[str, int, float], ...] = ()

    def reread_bytes(self, cache_bytes: int) -> dict[str, float]:
        """Bytes a prompt token reads again, by tensor type, from matrices larger than ``cache_bytes`` (a core's
        L2) in the kernels that walk a matrix once per TOKENS_PER_PASS tokens; none for 0 (unknown)."""
        out: dict[str, float] = {}
        if cache_bytes <= 0:
            return out
        for type_name, size, count in self.matrices:
            if type_name not in READ_ONCE_TYPES and size > cache_bytes:
                out[type_name] = out.get(type_name, 0.0) + count * (size - cache_bytes) / TOKENS_PER_PASS
        return out

    def pp_flops_by_type(self, n_prompt: int = 512) -> dict[str, float]:
        """pp_flops split by tensor type (the file type's when the types are unknown)."""
        if not self.params_by_type:
            return {self.quant: self.pp_flops(n_prompt)}
        out = {t: 2.0 * n for t, n in self.params_by_type.items()}
        if self.output_type in out:
            out[self.output_type] -= 2.0 * self.output_params * (1.0 - 1.0 / max(n_prompt, 1))
        return out

    @property
    def family(self) -> str:
        return type_family(self.quant)

    def bytes_by_family(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t, n in self.bytes_by_type.items():
            out[type_family(t)] = out.get(type_family(t), 0) + n
        return out

    def attended(self, depth: int) -> tuple[int, int]:
        """(full-attention cells, sliding-window cells) a generated token's attention spans with ``depth`` tokens
        already in the cache. The sliding-window cache holds the window plus a micro-batch (llama.cpp's
        llama_kv_cache_iswa), and without flash attention all of it is multiplied once full, masked or not."""
        full = attended_cells(depth + 1)
        if self.n_swa <= 0:
            return full, full
        return full, attended_cells(depth + 1, attended_cells(self.n_swa + N_UBATCH))

    def kv_bytes_at(self, depth: int) -> int:
        """KV bytes a token reads with ``depth`` tokens already in the cache."""
        full, swa = self.attended(depth)
        return self.kv_full_bytes_per_token * full + self.kv_swa_bytes_per_token * swa

    def scores_at(self, depth: int) -> int:
        """Attention scores a token computes with ``depth`` tokens already in the cache."""
        full, swa = self.attended(depth)
        return self.scores_full_per_token * full + self.scores_swa_per_token * swa

    def attn_flops_at(self, depth: int) -> int:
        """Attention FLOPs a generated token does over ``depth`` cached tokens."""
        return self.scores_at(depth) * self.attn_flops_per_score

    def cells_at(self, depth: int) -> float:
        """Cache cells a token's attention masks cover: one mask per cache kind (full, sliding window)."""
        full, swa = self.attended(depth)
        full = full if self.scores_full_per_token else 0
        swa = swa if self.scores_swa_per_token and self.n_swa > 0 else 0
        return (full + swa) * self.cell_share

    def bytes_read(self, depth: int = 0) -> int:
        return self.weight_bytes + self.kv_bytes_at(depth)

    def pp_flops(self, n_prompt: int = 512) -> float:
        """Weight-matmul FLOPs per prompt token for a prompt of ``n_prompt`` tokens (logits for its last one)."""
        per_token = max(self.matmul_params - self.output_params, 0)
        return 2.0 * per_token + 2.0 * self.output_params / max(n_prompt, 1)

    def pp_attn_flops(self, depth: int = 0, n_prompt: int = 512, n_ubatch: int = N_UBATCH) -> float:
        """Attention FLOPs per prompt token after ``depth`` cached tokens: each micro-batch's tokens against
        every cell it sees, in whole steps (no flash attention: masked cells are multiplied too)."""
        n_prompt = max(n_prompt, 1)
        cells = sum(
            min(n_ubatch, n_prompt - start) * attended_cells(depth + min(start + n_ubatch, n_prompt))
            for start in range(0, n_prompt, n_ubatch)
        )
        return self.attn_flops_per_cached_token * cells / n_prompt


def model_cost(header: GGUFHeader) -> ModelCost:
    """Bytes and FLOPs per token, read from a GGUF header (local or remote)."""
    shape = header_shape(header)  # shared with the memory model's reading of the same header
    n_expert = header_int(header.arch_key("expert_count"))
    n_used = header_int(header.arch_key("expert_used_count")) or n_expert
    tied = shape.tied_output  # no output.weight among the tensors, as the memory model read it
    output_name = "token_embd.weight" if tied else "output.weight"
    output_params = 0
    by_type: dict[str, int] = {}
    params_by_type: dict[str, int] = {}
    matmul_params = 0
    output_type = ""
    matrices: dict[tuple[str, int], float] = {}
    for t in header.tensors:  # n_elements, type_name and n_bytes are computed properties: read once per tensor
        name, dims = t.name, t.shape
        if name == "token_embd.weight" and not tied:
            continue  # one row per token: negligible
        n_elements = t.n_elements
        if len(dims) < 2 and n_elements < 1 << 16:
            continue  # norms and biases
        share = n_used / n_expert if n_expert > 1 and "_exps" in name else 1.0
        type_name, n_bytes = t.type_name, t.n_bytes
        params = int(n_elements * share)
        by_type[type_name] = by_type.get(type_name, 0) + int(n_bytes * share)
        matmul_params += params
        params_by_type[type_name] = params_by_type.get(type_name, 0) + params
        if name == output_name:
            output_params, output_type = n_elements, type_name
        elif len(dims) == 2 and name[:4] == "blk.":
            key = (type_name, n_bytes)
            matrices[key] = matrices.get(key, 0.0) + share
        elif len(dims) > 2 and name[:4] == "blk.":  # experts stacked along the third axis
            key = (type_name, n_bytes // dims[2])
            matrices[key] = matrices.get(key, 0.0) + dims[2] * share
    full, swa = kv_bytes_per_token(shape)
    attn = sum(4 * h * shape.head_dim_k for h in shape.n_head)  # QK^T plus softmax·V, 2 FLOPs per MAC
    scores_full, scores_swa = _scores_per_token(shape)
    notes = () if shape.known else shape.notes
    return ModelCost(
        n_layer=shape.n_layer,
        weight_bytes=sum(by_type.values()),
        bytes_by_type=by_type,
        matmul_params=matmul_params,
        quant=quantization_name(header),
        kv_full_bytes_per_token=full,
        kv_swa_bytes_per_token=swa,
        n_swa=shape.n_swa,
        attn_flops_per_cached_token=attn,
        notes=tuple(notes),
        output_params=output_params,
        params_by_type=params_by_type,
        output_type=output_type,
        scores_full_per_token=scores_full,
        scores_swa_per_token=scores_swa,
        attn_flops_per_score=4 * shape.head_dim_k,
        matrices=tuple((t, size, count) for (t, size), count in sorted(matrices.items())),
    )


def _scores_per_token(shape: ModelShape) -> tuple[int, int]:
    """(scores per cached token on full-attention layers, on sliding-window ones): one per query head of each
    layer that keeps a cache (a recurrent layer has none)."""
    full = swa = 0
    for il in range(shape.n_layer):
        if shape.n_head_kv[il] <= 0:
            continue
        if shape.swa[il]:
            swa += shape.n_head[il]
        else:
            full += shape.n_head[il]
    return full, swa


@dataclass(frozen=True)
class SpeedPrediction:
    tg_tps: float
    pp_tps: float
    ms_per_token: float
    depth: int
    confidence: str  # "measured" (from a calibrated profile) or "estimate"
    note: str = ""


def tg_seconds(cost: ModelCost, profile: SpeedProfile, depth: int = 0) -> float:
    """Seconds per generated token at ``depth``: the fixed parts, the weights, and attention over the cache so far."""
    fixed = profile.t_fixed + cost.n_layer * profile.t_layer
    by_type = cost.bytes_by_type or {cost.quant: cost.weight_bytes}
    weights = sum(n / profile.bandwidth(t) for t, n in by_type.items())
    return fixed + weights + _attention_seconds(cost, profile, depth)


def _attention_seconds(cost: ModelCost, profile: SpeedProfile, depth: int) -> float:
    """A generated token's attention over ``depth`` cached tokens, at the rates of the fit that measured its
    work and cells (per type, else per family), each part only where the fit kept it; a profile that has neither
    (an estimate, or one calibrated before they were measured) times the KV cache's bytes alone."""
    figures = profile.bw_by_quant or profile.bw_by_family
    kv_rate, attn_rate, cell_rate = figures.get(KV), figures.get(ATTN), figures.get(CELLS)
    if not attn_rate and not cell_rate:
        return cost.kv_bytes_at(depth) / profile.bandwidth(KV)
    seconds = cost.kv_bytes_at(depth) / kv_rate if kv_rate else 0.0
    seconds += cost.attn_flops_at(depth) / attn_rate if attn_rate else 0.0
    return seconds + (cost.cells_at(depth) / cell_rate if cell_rate else 0.0)


def pp_seconds(cost: ModelCost, profile: SpeedProfile, depth: int = 0, n_prompt: int = 512) -> float:
    """Seconds per prompt token (a batch of ``n_prompt`` after ``depth`` cached tokens)."""
    weights = sum(f / profile.flops(t) for t, f in cost.pp_flops_by_type(n_prompt).items())
    attn = cost.pp_attn_flops(depth, n_prompt) / (profile.attn_flops or profile.flops(cost.quant))
    return profile.pp_fixed + cost.n_layer * profile.pp_layer + weights + attn + reread_seconds(cost, profile)


def reread_seconds(cost: ModelCost, profile: SpeedProfile) -> float:
    """Seconds per prompt token spent reading again what of its matrices a core's L2 does not hold (the module's
    docstring), at the overall bandwidth generation measured; 0 where the profile does not know its L2 (targets,
    GPUs)."""
    reread = sum(cost.reread_bytes(profile.l2_bytes).values())
    return reread / profile.bw_effective if reread and profile.bw_effective > 0 else 0.0


def predict_speed(cost: ModelCost, profile: SpeedProfile, depth: int = 0, n_prompt: int = 512) -> SpeedPrediction:
    tg = tg_seconds(cost, profile, depth)
    pp = pp_seconds(cost, profile, depth, n_prompt)
    return SpeedPrediction(
        tg_tps=1.0 / tg,
        pp_tps=1.0 / pp,
        ms_per_token=tg * 1000.0,
        depth=depth,
        confidence="measured" if profile.measured else "estimate",
        note=profile.note,
    )
