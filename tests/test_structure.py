"""The shape of the code: imports run one way (STYLE.md, "Layout").

Nothing but the factory imports a routes module; module-level imports among app modules form no
cycle; the ledger imports no cause; QR rendering and db.py import no domain. The import graph is
read from the source with `ast`, so nothing here depends on what happens to be imported already.
The last test shows that a freshly created community needs nothing from community creation to
earn and spend points (the ledger creates its accounts and falls back to its default rules).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import call

ROOT = Path(__file__).resolve().parent.parent
FACTORY = "app"
DOMAINS = ("auth", "communities", "ledger", "wishes", "store", "reports", "activities", "stats",
           "web", "ops")
CAUSES = ("wishes", "store", "reports", "activities")


@dataclass(frozen=True)
class Import:
    target: str
    line: int
    module_level: bool


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path) -> dict[str, Path]:
    return {module_name(root, path): path for path in sorted(root.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_level_nodes(body: list[ast.stmt]):
    """Statements that run when the module is imported: not function bodies, not
    `if TYPE_CHECKING:` blocks; class bodies, top-level if/try/with blocks do run."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _module_level_nodes(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                yield from _module_level_nodes(
                    [c for c in children if isinstance(c, ast.stmt | ast.ExceptHandler)])


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """Every import of a module of `known` in the file, each resolved to the module it loads."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top = {id(node) for node in _module_level_nodes(tree.body)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.append(submodule if submodule in known else base)
        for target in targets:
            if target in known:
                found.append(Import(target, node.lineno, id(node) in top))
    return found


def import_graph(root: Path) -> dict[str, list[Import]]:
    modules = package_modules(root)
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def routes_imports(graph: dict[str, list[Import]]) -> list[str]:
    """Imports of a routes module anywhere (functions too), except by the factory, or by a
    package's own `__init__` registering its blueprints (app/web's `register_pages`)."""
    return [f"{name} line {imp.line} imports {imp.target}"
            for name, imports in graph.items() if name != FACTORY
            for imp in imports if imp.target.rpartition(".")[2] == "routes"
            and not (graph_is_package(name, graph) and imp.target.rpartition(".")[0] == name)]


def graph_is_package(name: str, graph: dict[str, list[Import]]) -> bool:
    return any(other.startswith(name + ".") for other in graph)


def cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """Strongly connected components of the module-level import graph with more than one
    module (or a module importing itself), each as one concrete cycle through it."""
    edges = {name: sorted({i.target for i in imports if i.module_level})
             for name, imports in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the app is small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, []):
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_one_cycle(component, edges) for component in components]


def _one_cycle(component: list[str], edges: dict[str, list[str]]) -> list[str]:
    """A path start → … → start inside the component, for a readable failure."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in edges[node]:
            if nxt == start:
                return [*paths[node], start]
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return component


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def forbidden_edges(graph, source: str, targets: tuple[str, ...]) -> list[str]:
    return [f"{name} line {imp.line} imports {imp.target}"
            for name, imports in graph.items() if _in(name, source)
            for imp in imports if any(_in(imp.target, t) for t in targets)]


@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT / "app")


# --- the rules on our code ------------------------------------------------------------------

def test_the_graph_sees_the_app(graph):
    # A parser that found nothing would pass every rule below.
    assert {"app", "app.wishes.routes", "app.ledger.service", "app.web.routes"} <= set(graph)
    factory_targets = {i.target for i in graph["app"]}
    assert "app.wishes.routes" in factory_targets and "app.errors" in factory_targets
    assert any(i.target == "app.qr" for i in graph["app.wishes.poster"])  # `from app import qr`


def test_only_the_factory_imports_routes_modules(graph):
    assert routes_imports(graph) == []


def test_module_level_imports_have_no_cycle(graph):
    assert cycles(graph) == []


def test_no_module_imports_the_factory(graph):
    assert [f"{name} line {imp.line}" for name, imports in graph.items()
            for imp in imports if imp.target == FACTORY] == []


@pytest.mark.parametrize(("source", "targets"), [
    ("app.ledger", tuple(f"app.{c}" for c in CAUSES)),
    ("app.qr", tuple(f"app.{d}" for d in DOMAINS)),
    ("app.db", tuple(f"app.{d}" for d in DOMAINS)),
    ("app.communities", ("app.ledger", *(f"app.{c}" for c in CAUSES))),
])
def test_imports_run_one_way(graph, source, targets):
    assert forbidden_edges(graph, source, targets) == []


# --- the checker itself finds what it looks for -----------------------------------------------

def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "app" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "app"


def test_the_checker_finds_cycles_and_routes_imports(tmp_path):
    package = _write(tmp_path, {
        "__init__.py": "def create():\n    from app.a.routes import bp\n",
        "a/__init__.py": "",
        "a/routes.py": "from app.a import service\n",
        "a/service.py": "from . import models\n",
        "a/models.py": "from app.b.service import thing\n",
        "b/__init__.py": "def register():\n    from app.b import routes\n    from app.a import routes\n",
        "b/routes.py": "",
        "b/service.py": "from app.a.models import Model\n\n"
                        "def later():\n    from app.a import routes\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from app.a.routes import bp\n\ndef f():\n    import app.c\n",
    })
    found = import_graph(package)
    assert found["app.a.service"][0].target == "app.a.models"  # relative import resolved
    assert routes_imports(found) == ["app.b line 3 imports app.a.routes",
                                     "app.b.service line 4 imports app.a.routes",
                                     "app.c line 3 imports app.a.routes"]
    assert cycles(found) == [["app.a.models", "app.b.service", "app.a.models"]]


# --- a new community needs no ledger set-up ---------------------------------------------------

def test_a_new_community_has_default_rules_and_earns_and_spends_points(client, factory):
    from app.ledger.service import DEFAULT_POLICY, DEFAULT_RULES

    admin = factory.user("平台管理员", admin=True)
    organiser, volunteer, resident = (factory.user(n) for n in ("新书记", "新志愿者", "新居民"))
    response = call(client, "POST", "/communities", factory.headers(admin),
                    {"name": "新建社区", "code": "xinjian", "organiser_phone": organiser.phone})
    assert response.status_code == 201, response.get_json()
    cid = response.get_json()["id"]
    org = factory.headers(organiser)
    for person, role in ((volunteer, "volunteer"), (resident, "resident")):
        assert call(client, "POST", f"/communities/{cid}/members", org,
                    {"user_id": person.id, "role": role}).status_code == 201

    rules = call(client, "GET", f"/communities/{cid}/points-rules", org).get_json()
    level3 = next(r["points"] for r in rules["rules"] if (r["category"], r["level"]) == ("wish", 3))
    assert level3 == DEFAULT_RULES["wish"][2]
    assert rules["daily_earn_cap"] == DEFAULT_POLICY["daily_earn_cap"]
    assert rules["satisfaction_factors"]["5"] == DEFAULT_POLICY["factor_5"]

    # The first award: a wish posted, approved at level 3, claimed, fulfilled, rated 5 stars.
    vol, res = factory.headers(volunteer), factory.headers(resident)
    board = call(client, "POST", f"/communities/{cid}/boards", org, {"name": "一号楼"}).get_json()
    wish = call(client, "POST", f"/boards/{board['id']}/wishes", res,
                {"title": "帮忙换灯泡", "description": "客厅灯泡坏了，够不着。",
                 "category": "repair"}).get_json()
    for who, action, body in ((org, "approve", {"level": 3}), (vol, "claim", {}),
                              (vol, "fulfil", {"note": "已换好"}),
                              (res, "confirm", {"rating": 5, "comment": "谢谢"})):
        response = call(client, "POST", f"/wishes/{wish['id']}/{action}", who, body)
        assert response.status_code == 200, (action, response.get_json())
    award = level3 * DEFAULT_POLICY["factor_5"] // 100
    points = call(client, "GET", f"/me/points?community_id={cid}", vol).get_json()
    assert points["balance"] == award, points

    # The first redemption, from the store account nobody set up.
    reward = call(client, "POST", f"/communities/{cid}/rewards", org,
                  {"name": "洗衣液", "kind": "goods", "cost": award, "stock": 3}).get_json()
    response = call(client, "POST", f"/rewards/{reward['id']}/redeem", vol, {"quantity": 1})
    assert response.status_code == 201, response.get_json()
    assert call(client, "GET", f"/me/points?community_id={cid}", vol).get_json()["balance"] == 0
