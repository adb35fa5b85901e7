"""The KCL consumer's record processor process (started by the MultiLangDaemon)."""
