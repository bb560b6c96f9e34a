"""The shape of the code, read with `ast` (nothing is imported or run): short functions in realtime/, no import
cycles, and nothing below run_demo.py that reads the command line or the environment."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("realtime", "dmd_model", "recipes")
MAX_FUNCTION_LINES = 80
CLI_MODULES = {"realtime.extract"}
"""realtime's own command-line entry points (``python -m realtime.extract``): they may parse their arguments."""


def modules(pkg: str) -> dict[str, Path]:
    base = ROOT / pkg
    out = {}
    for p in sorted(base.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


ALL = {name: path for pkg in PACKAGES for name, path in modules(pkg).items()}


def _is_type_checking_block(node) -> bool:
    if not isinstance(node, ast.If):
        return False
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imported(name: str, path: Path, module_level_only: bool) -> set[str]:
    """The project modules ``name`` imports (relative imports resolved; ``from pkg import mod`` counted as mod)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    nodes = tree.body if module_level_only else ast.walk(tree)
    type_only = {id(inner) for block in ast.walk(tree) if _is_type_checking_block(block)
                 for stmt in block.body for inner in ast.walk(stmt)}
    out = set()
    for node in nodes:
        if id(node) in type_only:  # `if TYPE_CHECKING:` never runs: annotations only, no import at run time
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in ALL and t != name}
    return out


def cycles(module_level_only: bool) -> list[list[str]]:
    graph = {n: imported(n, p, module_level_only) for n, p in ALL.items()}
    found, state = [], {}

    def visit(n, stack):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m, stack)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n, [])
    return found


def test_the_walk_sees_the_packages():
    assert {"realtime.ui.session", "realtime.pipeline", "dmd_model.model", "recipes.bootstrap"} <= set(ALL)


def test_no_function_in_realtime_is_longer_than_80_lines():
    long = []
    for name, path in ALL.items():
        if not name.startswith("realtime"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {n} lines")
    assert long == []


def test_no_import_cycle_at_import_time():
    assert cycles(module_level_only=True) == []


def test_no_import_cycle_even_through_lazy_imports():
    assert cycles(module_level_only=False) == []


def test_the_cycle_check_can_fail(tmp_path, monkeypatch):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from realtime import b_fake\n")
    b.write_text("def f():\n    import realtime.a_fake\n")
    monkeypatch.setitem(ALL, "realtime.a_fake", a)
    monkeypatch.setitem(ALL, "realtime.b_fake", b)
    assert ["realtime.a_fake", "realtime.b_fake", "realtime.a_fake"] in cycles(module_level_only=False)
    assert cycles(module_level_only=True) == []


def _uses(tree: ast.AST, attr_names: set[str], call_names: set[str]) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in attr_names:
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in call_names:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and {a.name for a in node.names} & attr_names:
            lines.append(node.lineno)
    return lines


def test_nothing_below_run_demo_reads_or_writes_the_environment():
    """Configuration is built in run_demo.py (or a CLI's main) and passed in: realtime/ never touches os.environ,
    os.getenv or os.putenv."""
    found = {}
    for name, path in ALL.items():
        if name.startswith("realtime"):
            lines = _uses(ast.parse(path.read_text(encoding="utf-8")), {"environ", "getenv", "putenv", "unsetenv"},
                          {"getenv", "putenv"})
            if lines:
                found[name] = lines
    assert found == {}


def test_no_argparse_namespace_below_run_demo():
    """Only the command-line entry points parse arguments; the page gets a frozen `realtime.config.UIConfig`."""
    found = {}
    for name, path in ALL.items():
        if name.startswith("realtime") and name not in CLI_MODULES:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            lines = [n.lineno for n in ast.walk(tree)
                     if (isinstance(n, ast.Import) and any(a.name == "argparse" for a in n.names))
                     or (isinstance(n, ast.ImportFrom) and n.module == "argparse")
                     or (isinstance(n, ast.Name) and n.id == "Namespace")
                     or (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "args")]
            if lines:
                found[name] = lines
    assert found == {}


def test_layers_point_one_way():
    """dmd_model imports neither realtime nor recipes; realtime does not import recipes (recipes sit above both);
    nothing below the page (realtime.ui) imports gradio."""
    wrong = []
    for name, path in ALL.items():
        deps = imported(name, path, module_level_only=False)
        if name.startswith("dmd_model"):
            wrong += [f"{name} -> {d}" for d in deps if d.startswith(("realtime", "recipes"))]
        if name.startswith("realtime"):
            wrong += [f"{name} -> {d}" for d in deps if d.startswith("recipes")]
            if not name.startswith("realtime.ui"):
                wrong += [f"{name} -> {d}" for d in deps if d.startswith("realtime.ui")]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if name != "realtime.ui.app" and any(
                (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "gradio" for a in n.names))
                or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "gradio")
                for n in ast.walk(tree)):
            wrong.append(f"{name} -> gradio")
    assert wrong == []


def test_the_docs_name_every_module():
    """docs/architecture.md's table names every module of realtime/ (the extractors in docs/features.md) and
    recipes/; the README's layout table names every top-level folder."""
    arch = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    features = (ROOT / "docs" / "features.md").read_text(encoding="utf-8")
    missing = []
    for name, path in ALL.items():
        if path.name == "__init__.py" or not name.startswith(("realtime", "recipes")):
            continue
        rel = path.relative_to(ROOT).as_posix()
        short = rel.split("/", 1)[1]  # e.g. ui/session.py
        if name.startswith("realtime.features"):
            if path.name not in features:
                missing.append(rel)
        elif rel not in arch and f"`realtime/{short.split('/')[0]}/*`" not in arch and not (
                name.startswith("recipes") and "`recipes/*`" in arch) and path.name not in arch:
            missing.append(rel)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("| path | what |"):readme.index("Which module does what")]
    for d in sorted(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")
                    and (ROOT / p.name).exists() and p.name not in ("artifacts", "runs", "build")
                    and not p.name.endswith(".egg-info")):
        if f"`{d}/" not in layout:
            missing.append(f"README layout: {d}/")
    assert missing == []


def test_the_session_module_stays_small():
    """realtime/ui/session.py controls streams only (issue 16: it had about seven jobs in 637 lines)."""
    assert len((ROOT / "realtime" / "ui" / "session.py").read_text(encoding="utf-8").splitlines()) < 300
