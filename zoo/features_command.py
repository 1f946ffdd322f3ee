"""placeholder"""
def add_features_parser(sub):
    pass
