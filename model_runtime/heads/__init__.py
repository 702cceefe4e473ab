"""The default head and what is drawn on it: the head itself (head), its named landmarks (landmarks), rig channel
names (rig_names), mesh normals (geometry), the numpy renderer (render) and the preview contact sheet (preview).

numpy and Pillow only, no torch: the renderer and the photo reader stay light.
"""
