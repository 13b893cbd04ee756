"""import_target: one resolution rule and one set of errors for every python:module:function."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.importing import import_target, split_target


@pytest.fixture(autouse=True)
def forget_imported_modules() -> Iterator[None]:
    """Each test writes its own modules; drop them afterwards so names can be reused."""
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]
    assert sys.path == path, "import_target must leave sys.path as it found it"


def module(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def test_suite_directory_then_rootdir_then_sys_path(tmp_path: Path) -> None:
    suite, root = tmp_path / "suites" / "a", tmp_path
    module(suite, "imp_beside_suite", "def f(x):\n    return 'suite'\n")
    module(root, "imp_in_root", "def f(x):\n    return 'root'\n")
    dirs = [suite, root]
    assert import_target("imp_beside_suite:f", base_dirs=dirs, what="t")(0) == "suite"
    assert import_target("python:imp_in_root:f", base_dirs=dirs, what="t")(0) == "root"
    assert import_target("json:dumps", base_dirs=dirs, what="t")([1]) == "[1]"  # sys.path


def test_the_suite_directory_wins_over_the_rootdir(tmp_path: Path) -> None:
    module(tmp_path / "suite", "imp_both", "def f():\n    return 'suite'\n")
    module(tmp_path, "imp_both", "def f():\n    return 'root'\n")
    fn = import_target("imp_both:f", base_dirs=[tmp_path / "suite", tmp_path], what="t")
    assert fn() == "suite"


def test_same_module_name_in_two_suite_directories_gives_each_its_own(tmp_path: Path) -> None:
    module(tmp_path / "a", "imp_helpers", "def which():\n    return 'a'\n")
    module(tmp_path / "b", "imp_helpers", "def which():\n    return 'b'\n")
    a = import_target("imp_helpers:which", base_dirs=[tmp_path / "a"], what="t")
    b = import_target("imp_helpers:which", base_dirs=[tmp_path / "b"], what="t")
    assert (a(), b()) == ("a", "b")
    # asking again returns the same objects (modules are not re-executed)
    assert import_target("imp_helpers:which", base_dirs=[tmp_path / "b"], what="t") is b
    assert import_target("imp_helpers:which", base_dirs=[tmp_path / "a"], what="t") is a


def test_packages_and_dotted_attributes(tmp_path: Path) -> None:
    pkg = tmp_path / "imp_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    module(pkg, "scorers", """
        class Scorer:
            @staticmethod
            def score(x):
                return x * 2
    """)
    fn = import_target("imp_pkg.scorers:Scorer.score", base_dirs=[tmp_path], what="t")
    assert fn(21) == 42


def test_a_package_name_clash_is_an_error_naming_both_places(tmp_path: Path) -> None:
    for side in ("a", "b"):
        pkg = tmp_path / side / "imp_clash_pkg"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f"def f():\n    return {side!r}\n")
    import_target("imp_clash_pkg:f", base_dirs=[tmp_path / "a"], what="t")
    with pytest.raises(ConfigError, match=r"package 'imp_clash_pkg' at .*b.* already imported from .*a"):
        import_target("imp_clash_pkg:f", base_dirs=[tmp_path / "b"], what="t")


def test_missing_module_names_every_directory_searched(tmp_path: Path) -> None:
    suite, root = tmp_path / "suite", tmp_path / "root"
    suite.mkdir()
    root.mkdir()
    with pytest.raises(ConfigError) as info:
        import_target("imp_nowhere_xyz:f", base_dirs=[suite, root], what="metric 'python:imp_nowhere_xyz:f'")
    msg = str(info.value)
    assert msg.startswith("metric 'python:imp_nowhere_xyz:f': cannot import module 'imp_nowhere_xyz'")
    assert str(suite) in msg and str(root) in msg and "sys.path" in msg
    assert "imp_nowhere_xyz.py beside the suite file" in msg


def test_a_missing_dependency_inside_the_module_is_not_reported_as_the_module_missing(
        tmp_path: Path) -> None:
    path = module(tmp_path, "imp_needs_dep", "import imp_dep_that_is_absent\n\ndef f():\n    pass\n")
    with pytest.raises(ConfigError) as info:
        import_target("imp_needs_dep:f", base_dirs=[tmp_path], what="t")
    msg = str(info.value)
    assert "importing module 'imp_needs_dep' raised ModuleNotFoundError" in msg
    assert "imp_dep_that_is_absent" in msg and f"{path}:1" in msg


def test_an_exception_while_importing_names_the_file_and_line(tmp_path: Path) -> None:
    path = module(tmp_path, "imp_raises", "X = 1\nraise RuntimeError('no config')\n")
    with pytest.raises(ConfigError, match=rf"raised RuntimeError: no config \(at {path}:2\)"):
        import_target("imp_raises:f", base_dirs=[tmp_path], what="t")
    module(tmp_path, "imp_syntax", "def f(:\n")
    with pytest.raises(ConfigError, match="importing module 'imp_syntax' raised SyntaxError"):
        import_target("imp_syntax:f", base_dirs=[tmp_path], what="t")


def test_missing_attribute_suggests_the_closest_name(tmp_path: Path) -> None:
    path = module(tmp_path, "imp_attrs", "def keyword_hit():\n    pass\n\nclass K:\n    pass\n")
    with pytest.raises(ConfigError) as info:
        import_target("imp_attrs:keyword_hits", base_dirs=[tmp_path], what="check 'python: x'")
    assert str(info.value) == (f"check 'python: x': module 'imp_attrs' ({path}) has no attribute "
                               f"'keyword_hits'. Did you mean 'keyword_hit'?")
    with pytest.raises(ConfigError, match=r"'imp_attrs:K' has no attribute 'run'\.$"):
        import_target("imp_attrs:K.run", base_dirs=[tmp_path], what="t")


def test_non_callable_says_what_it_is(tmp_path: Path) -> None:
    module(tmp_path, "imp_const", "LIMIT = 3\n")
    with pytest.raises(ConfigError, match=r"'LIMIT' in module 'imp_const' is not callable \(its type is int\)"):
        import_target("imp_const:LIMIT", base_dirs=[tmp_path], what="t")


@pytest.mark.parametrize("target", ["nomodule", "mod:", ":fn", "a:b:c", "python:mod:fn-x", "my mod:f"])
def test_malformed_references_show_the_expected_form(target: str) -> None:
    with pytest.raises(ConfigError, match="expected 'python:module:function'"):
        split_target(target, "judge 'x'")


def test_directories_that_do_not_exist_are_skipped(tmp_path: Path) -> None:
    module(tmp_path, "imp_skip", "def f():\n    return 1\n")
    assert import_target("imp_skip:f", base_dirs=[tmp_path / "gone", tmp_path], what="t")() == 1
