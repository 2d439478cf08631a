"""Problem reports (随手拍 / 社情民意收集): 发现—分办—处置—反馈, with photos."""
