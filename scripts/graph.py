"""Cycles of a directed graph, for the house checks (scripts/check-layers.sh, scripts/check-symbols.sh)."""
import sys


def cycles(nodes, succ):
    """One shortest cycle ("a -> b -> a") per strongly connected component of more than one node.

    nodes: iterable of node names; succ: dict node -> iterable of successors."""
    index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(succ.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    res = []
    for comp in comps:  # breadth first from the component's first node back to it
        start, cs = comp[0], set(comp)
        prev, todo, found = {start: None}, [start], None
        while todo and found is None:
            nxt = []
            for v in todo:
                if start in succ.get(v, ()):
                    found = v
                    break
                for w in sorted(succ.get(v, ())):
                    if w in cs and w not in prev:
                        prev[w] = v
                        nxt.append(w)
            todo = nxt
        path, v = [], found
        while v is not None:
            path.append(v)
            v = prev[v]
        path.reverse()
        extra = " (and %d more in cycles with these)" % (len(comp) - len(path)) if len(comp) > len(path) else ""
        res.append(" -> ".join(path + [start]) + extra)
    return res
