mod net {}
