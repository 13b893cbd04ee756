"""The one compiled module, the contamination scanner's UTF-8 and token passes.

It is optional: where it cannot be built (no C compiler), the package installs without
it and the scanner uses pyarrow's kernels alone, with the same results, more slowly
(``pytest_llmeval.contamination.native.available()`` says which; with ``CI`` set, the
tests fail instead of skipping). setuptools turns the ``.pyx`` into C with Cython, which
``pyproject.toml`` lists among the build requirements.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("pytest_llmeval.contamination._scan",
              ["pytest_llmeval/contamination/_scan.pyx"],
              extra_compile_args=["-O3"], optional=True),
])
