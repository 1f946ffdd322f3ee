"""quovadis.zoo: named video models with their weights, labels and preprocessing."""
