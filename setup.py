"""Everything about the package is in pyproject.toml; this file only adds the optional compiled module.

``kubesvc.dataplane.ingress._heads`` (C, no dependency but Python's headers) speeds up the ingress router's general
path. It is optional: where no C compiler is found the build goes on without it (``optional=True``) and the router
takes its pure-Python path, which writes the same bytes.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("kubesvc.dataplane.ingress._heads", ["kubesvc/dataplane/ingress/_heads.c"], optional=True)])
