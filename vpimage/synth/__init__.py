"""Fluoroscopy phantom of vertebroplasty with ground truth, and its DICOM writer."""
