"""Labelled chest X-ray collections other than NIH, each read into one manifest.

Every collection has its own table, its own label strings and its own idea
of a patient and a view; an adapter per collection turns it into the same
manifest (:mod:`cxrmask.datasets.manifest`), so what comes after curation
never knows which collection it reads. The label maps are data
(:mod:`cxrmask.datasets.labelmaps`): a reader who doubts a mapping reads it
there, and a label string no map knows stops the run, naming the map.
"""
