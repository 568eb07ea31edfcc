"""The application shell: QApplication set-up, the main window, About, the icon, lazily built pages, and
the smoke test / driver used by packaging and screenshots."""
