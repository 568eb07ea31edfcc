"""The order in which the Vulkan backend runs a GPU run's nodes, which is the order ggml-alloc places them in.

Before a split is allocated, ggml's scheduler lets its backend optimise it (``ggml_backend_graph_optimize``); the
Vulkan backend (``ggml_vk_graph_optimize``) regroups the nodes so that independent ones run together: from the
first node not yet placed, it takes every later node within 20 that depends on nothing still waiting, then the
view nodes whose sources are placed, and repeats. Fusion patterns (RMS_NORM+MUL+ADD, ROPE+VIEW+SET_ROWS, and a
mixture-of-experts router's top-k: softmax or sigmoid, argsort, get_rows, renormalisation) are kept together; for
the top-k ones the backend also asks the scheduler to keep the pattern's inputs alive until its last node, which
the scheduler does with a dependency node after it (so the router logits are not reused in place). With that
order a split's tensors live at other times, and the GPU's compute buffer moves (by up to 10 % on lavapipe for the
test models; +36 % for lfm2moe with every layer offloaded, had the top-k dependencies been left out). This
replays it on ``compute_graph``'s symbolic nodes, whose view nodes stand for ggml's VIEW, RESHAPE, PERMUTE and
TRANSPOSE alike. ``GGML_VK_DISABLE_GRAPH_OPTIMIZE`` turns it off.
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


# The mixture-of-experts routing patterns the backend fuses into one top-k shader (ggml-vulkan-types.h), tried before
# the others; RESHAPE and VIEW are both compute_graph's "view". Kept in order, and their outside inputs stay alive
# until the pattern's last node (a trailing SCALE included): the backend adds those as allocation dependencies.
_TOPK_MOE = (
    ("soft_max", "view", "argsort", "view", "get_rows", "view", "sum_rows", "clamp", "div", "view"),
    ("unary", "view", "add", "argsort", "view", "get_rows", "view", "sum_rows", "clamp", "div", "view"),
    ("unary", "sqrt", "view", "add", "argsort", "view", "get_rows", "view", "sum_rows", "clamp", "div", "view"),
    ("soft_max", "view", "argsort", "view", "get_rows"),
    ("argsort", "view", "get_rows", "view", "soft_max", "view"),
)
MAX_SRC = 10  # GGML_MAX_SRC: a dependency node holds this many kept tensors


def reorder(nodes: list[Tensor]) -> list[Tensor]:
    """ggml_vk_graph_optimize's order of one split's nodes, with the scheduler's dependency nodes after the nodes
    they wait for (ops "none", views of the first tensor they keep: ggml_backend_sched_split_graph's alloc deps)."""
    n = len(nodes)
    used = [False] * n
    done: set[int] = set()
    out: list[Tensor] = []
    first = 0
    keep_until: dict[int, list[Tensor]] = {}  # id(node) → tensors kept alive until it has run

    def keep_inputs(pattern: tuple[str, ...], last: int) -> None:
        seen: set[int] = set()
        kept = keep_until.setdefault(id(nodes[last]), [])
        for j in range(first, first + len(pattern)):
            for src in nodes[j].srcs:
                if id(src) not in seen:
                    seen.add(id(src))
                    if all(k is not src for k in kept):
                        kept.append(src)
            seen.add(id(nodes[j]))

    def matches(pattern: tuple[str, ...], start: int) -> bool:
        return start + len(pattern) <= n and all(
            nodes[start + j].op == op and not used[start + j] for j, op in enumerate(pattern)
        )

    def scheduled_between(lo: int, hi: int) -> bool:
        return all(used[v] or _empty(nodes[v]) for v in range(lo, hi))

    while first < n:
        topk = next((p for p in _TOPK_MOE if matches(p, first)), None)
        if topk is not None:
            last = first + len(topk) - 1
            keep_inputs(topk, last + 1 if last + 1 < n and nodes[last + 1].op == "scale" else last)
        kept = topk or next((p for p in _KEEP if matches(p, first)), None)
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
            if used[j] or _empty(nodes[j]) or any(matches(p, j) for p in (*_TOPK_MOE, *_KEEP)):
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
    return _with_dependencies(out, keep_until) if keep_until else out


def _with_dependencies(order: list[Tensor], keep_until: dict[int, list[Tensor]]) -> list[Tensor]:
    out: list[Tensor] = []
    for node in order:
        out.append(node)
        kept = keep_until.get(id(node), [])
        for i in range(0, len(kept), MAX_SRC):
            chunk = kept[i : i + MAX_SRC]
            out.append(Tensor(f"{chunk[0].name}#kept", 0, "none", chunk, view_src=chunk[0].view_src or chunk[0]))
    return out


_FUSED_PAIRS = frozenset({("mul_mat", "add"), ("mul_mat_id", "add_id"), ("mul_mat_id", "mul"), ("add", "add")})
