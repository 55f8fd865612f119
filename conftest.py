pytest_plugins = ["contactcenter.testing.fixtures"]
