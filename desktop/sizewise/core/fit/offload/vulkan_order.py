"""The order in which the Vulkan backend runs a GPU run's nodes, which is the order ggml-alloc places them in.

Before a split is allocated, ggml's scheduler lets its backend optimise it (``ggml_backend_graph_optimize``); the
Vulkan backend (``ggml_vk_graph_optimize``) regroups the nodes so that independent ones run together: from the
first node not yet placed, it takes every later node within 20 that depends on nothing still waiting, then the
view nodes whose sources are placed, and repeats. Fusion patterns (RMS_NORM+MUL+ADD, ROPE+VIEW+SET_ROWS …) are
kept together. With that order a split's tensors live at other times, and the GPU's compute buffer moves (by up
to 10 % on lavapipe for the test models). This replays it on ``compute_graph``'s symbolic nodes, whose view nodes
stand for ggml's VIEW, RESHAPE, PERMUTE and TRANSPOSE alike. ``GGML_VK_DISABLE_GRAPH_OPTIMIZE`` turns it off.
"""

from __future__ import annotations

from sizewise.core.fit.compute_graph import Tensor

LOOK_AHEAD = 20  # NUM_TO_CHECK
_KEEP = (  # the fusion patterns kept as they stand, in the order the backend tries them
    ("rms_norm", "mul", "add", "mul"),
    ("rms_norm", "mul", "add"),
    ("rms_norm", "mul", "rope", "view", "set_rows"),
    ("rms_norm", "view", "set_rows"),
    ("rope", "view", "set_rows"),
)


def _empty(t: Tensor) -> bool:
    return t.op in ("none", "view")


def _base(t: Tensor) -> Tensor:
    return t.view_src or t


def _is_src_of(dst: Tensor, src: Tensor) -> bool:
    """dst reads src, directly or through storage a view of it shares (the backend's is_src_of)."""
    for s in dst.srcs:
        if s is src:
            return True
    if not (_empty(dst) or _empty(src)):
        if any(_base(s) is _base(src) for s in dst.srcs):
            return True
        if any(_base(dst) is _base(s) for s in src.srcs):
            return True
    return _base(dst) is _base(src)


def reorder(nodes: list[Tensor]) -> list[Tensor]:
    """ggml_vk_graph_optimize's order of one split's nodes (dense-model patterns; MoE top-k ones are not kept)."""
    n = len(nodes)
    used = [False] * n
    done: set[int] = set()
    out: list[Tensor] = []
    first = 0

    def matches(pattern: tuple[str, ...], start: int) -> bool:
        return start + len(pattern) <= n and all(
            nodes[start + j].op == op and not used[start + j] for j, op in enumerate(pattern)
        )

    def scheduled_between(lo: int, hi: int) -> bool:
        return all(used[v] or _empty(nodes[v]) for v in range(lo, hi))

    while first < n:
        kept = next((p for p in _KEEP if matches(p, first)), None)
        if kept is not None:
            for j in range(len(kept)):
                used[first + j] = True
                out.append(nodes[first + j])
                done.add(id(nodes[first + j]))
            while first < n and used[first]:
                first += 1
            continue
        current = [first]
        for j in range(first + 1, min(first + LOOK_AHEAD, n)):
            if used[j] or _empty(nodes[j]) or any(matches(p, j) for p in _KEEP):
                continue
            ok = True
            for c in range(first, j):
                if used[c] or not _is_src_of(nodes[j], nodes[c]):
                    continue
                last = c == current[-1]
                fused = last and (
                    (nodes[c].op in ("rms_norm", "unary") and nodes[j].op == "mul" and scheduled_between(c + 1, j))
                    or (j == c + 1 and (nodes[c].op, nodes[j].op) in _FUSED_PAIRS)
                )
                if not fused:
                    ok = False
                    break
            if not ok:
                continue
            current.append(j)
            rope = j
            if nodes[j].op == "mul" and j > 0 and nodes[j - 1].op == "rms_norm":
                for k in range(j + 1, min(j + 15, n)):
                    t = nodes[k]
                    if t.op == "rope" and t.srcs[0] is nodes[j] and all(s.op == "none" for s in t.srcs[1:]):
                        rope = k
                        current.append(k)
                        used[k] = True
                        break
            if nodes[rope].op in ("rope", "rms_norm"):
                view = set_rows = -1
                for k in range(rope + 1, min(rope + 15, n)):
                    if used[k]:
                        continue
                    t = nodes[k]
                    if view == -1 and t.op == "view" and t.srcs and t.srcs[0] is nodes[rope]:
                        view = k
                        continue
                    if view != -1 and t.op == "set_rows" and t.srcs[0] is nodes[view]:
                        set_rows = k
                        break
                if set_rows != -1 and not any(
                    not used[c] and c != view and not _empty(nodes[c]) and _is_src_of(nodes[set_rows], nodes[c])
                    for c in range(rope + 1, set_rows)
                ):
                    current += [view, set_rows]
                    used[view] = used[set_rows] = True
            if j > 0 and nodes[j].op == "add" and nodes[j - 1].op == "mul_mat":
                for k in range(j + 1, min(j + 15, n)):
                    t = nodes[k]
                    if t.op == "add" and t.srcs[0] is nodes[j] and (t.srcs[1].op == "none" or id(t.srcs[1]) in done):
                        current.append(k)
                        used[k] = True
                        break
        if nodes[current[-1]].op != "add":  # then the views whose sources are placed
            for j in range(first + 1, min(first + LOOK_AHEAD, n)):
                if used[j] or not _empty(nodes[j]):
                    continue
                if all(used[c] or c in current or not _is_src_of(nodes[j], nodes[c]) for c in range(first, j)):
                    current.append(j)
        for c in current:
            out.append(nodes[c])
            done.add(id(nodes[c]))
            used[c] = True
        while first < n and used[first]:
            first += 1
    return out


_FUSED_PAIRS = frozenset({("mul_mat", "add"), ("mul_mat_id", "add_id"), ("mul_mat_id", "mul"), ("add", "add")})
