"""The one compiled module, built when a C compiler is there (the project's metadata is in pyproject.toml).

``kubeguard.graph._counting`` is the activity recorder's per-event counting; without a compiler the build
skips it (``optional``) and the recorder counts in Python, the same counts at about three times the cost.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "kubeguard.graph._counting",
            ["src/kubeguard/graph/_counting.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
