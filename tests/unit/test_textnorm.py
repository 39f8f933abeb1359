from dialog.textnorm import BIGRAM_PREFIX, analyze, normalize, stem


def test_full_width_becomes_half_width_and_case_folds() -> None:
    assert normalize("ＷＩＦＩ　密码１２３！") == "wifi 密码123"


def test_traditional_becomes_simplified() -> None:
    # zhconv also maps regional vocabulary: Taiwan's 印表機 is the mainland 打印机.
    assert normalize("印表機卡紙了") == "打印机卡纸了"
    assert analyze("打印機無法連接").words == analyze("打印机无法连接").words


def test_punctuation_is_folded_and_inner_hyphens_joined() -> None:
    assert normalize("Wi-Fi, e-mail; (router)…「好」") == "wifi email router 好"
    assert normalize("don't") == "dont"


def test_mixed_chinese_and_english_are_segmented_and_stemmed() -> None:
    terms = analyze("打印机 offline 了").terms
    assert "打印机" in terms
    assert "offlin" in terms  # stemmed like the article's "offline"
    assert "了" not in terms  # stop word
    assert BIGRAM_PREFIX + "打印" in terms


def test_bigrams_survive_a_typo() -> None:
    right = set(analyze("墨盒怎么换").bigrams)
    typo = set(analyze("墨合怎么换").bigrams)
    assert right and typo
    assert analyze("墨盒").words != analyze("墨合").words


def test_stemmer_joins_inflections() -> None:
    assert stem("charged") == stem("charging") == stem("charge")
    assert stem("cards") == "card"
    assert stem("verification") == stem("verify") == stem("verified")
    assert stem("withdrawal") == stem("withdraw")
    assert stem("bus") == "bus"


def test_stop_words_are_configurable() -> None:
    assert "card" not in analyze("my card", frozenset({"card"})).terms
    assert "my" in analyze("my card", frozenset()).terms
