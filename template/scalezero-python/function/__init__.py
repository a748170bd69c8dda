# a package is a folder: faas-cli copies this one to build/<name>/function/
