"""Sequence-to-sequence datasets: Multi30k, Tatoeba fra-eng, SCAN, bAbI.

Every example is `{'source': text, 'target': text}` in file order (bAbI adds
its task number). Texts are kept as the files give them; tokenisation is the
experiment's business. A bAbI source is the story, one sentence per line,
with the question as its last line.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from rnn_jax.data.builders.base import ExamplesBuilder
from rnn_jax.data.builders.base import RawFile
from rnn_jax.data.builders.base import read_text
from rnn_jax.data.builders.base import register
from rnn_jax.errors import InputError


class _Seq2SeqBuilder(ExamplesBuilder):
  """Base: `_examples()` gives split -> example dicts."""
  TASK = 'seq2seq'

  def _features(self) -> dict:
    return {'source': tfds.features.Text(), 'target': tfds.features.Text()}


def _lines(raw: RawFile) -> list[str]:
  text = read_text(raw)
  lines = text.split('\n')
  if lines and not lines[-1]:
    lines.pop()
  return [line.rstrip('\r') for line in lines]


_MULTI30K_URL = ('https://raw.githubusercontent.com/multi30k/dataset/'
                 'master/data/task1/raw/')
_MULTI30K_SPLITS = {'train': 'train', 'valid': 'val',
                    'test': 'test_2016_flickr'}


@register('multi30k')
class Multi30k(_Seq2SeqBuilder):
  """Multi30k task 1, raw text (Elliott et al. 2016): image captions in
  English and German, 29,000 train / 1,014 valid / 1,000 test (2016 Flickr)
  pairs. Config `de-en` (default) translates German to English, `en-de`
  the other way."""
  HOMEPAGE = 'https://github.com/multi30k/dataset'
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name='de-en', description='German -> English'),
      tfds.core.BuilderConfig(name='en-de', description='English -> German'),
  ]

  def _examples(self):
    source, target = self.builder_config.name.split('-')
    out = {}
    for split, stem in _MULTI30K_SPLITS.items():
      sides = {}
      for lang in (source, target):
        name = f'{stem}.{lang}.gz'
        sides[lang] = _lines(RawFile(f'multi30k/task1/raw/{name}',
                                     _MULTI30K_URL + name, _MULTI30K[name]))
      if len(sides[source]) != len(sides[target]):
        raise InputError(f'multi30k {split}: {len(sides[source])} {source} '
                         f'lines but {len(sides[target])} {target} lines')
      out[split] = [{'source': s, 'target': t}
                    for s, t in zip(sides[source], sides[target])]
    return out


@register('fra_eng')
class FraEng(_Seq2SeqBuilder):
  """English -> French sentence pairs from Tatoeba (manythings.org's Anki
  export of 2019-04-07, as d2l.ai distributes it): 167,130 pairs in one
  split `train`, ordered from the shortest sentences to the longest. The
  experiment takes the first `data.max_examples` pairs and carves valid and
  test off them."""
  HOMEPAGE = 'https://www.manythings.org/anki/'
  RAW = RawFile('fra-eng/fra.txt.gz',
                'http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip',
                '0bb85dbaa1c896844649094d7eaf2e34bee34e84fe362b26ce7e8f2e12aae104',
                member='fra-eng/fra.txt')

  def _examples(self):
    pairs = []
    for number, line in enumerate(_lines(self.RAW), start=1):
      english, tab, french = line.partition('\t')
      if not tab:
        raise InputError(f'fra-eng/fra.txt:{number}: expected '
                         f'English<TAB>French, got {line[:60]!r}')
      pairs.append({'source': english, 'target': french.split('\t')[0]})
    return {'train': pairs}


_SCAN_URL = 'https://github.com/brendenlake/SCAN/archive/master.zip'
_SCAN_FILES = {
    'simple': 'simple_split/tasks_{}_simple.txt',
    'length': 'length_split/tasks_{}_length.txt',
    'addprim_jump': 'add_prim_split/tasks_{}_addprim_jump.txt',
    'addprim_turn_left': 'add_prim_split/tasks_{}_addprim_turn_left.txt',
}


@register('scan')
class Scan(_Seq2SeqBuilder):
  """SCAN (Lake & Baroni 2018): navigation commands -> action sequences,
  e.g. 'jump twice' -> 'I_JUMP I_JUMP'. Configs `simple` (random 80/20),
  `length` (test actions longer than any in train), `addprim_jump` and
  `addprim_turn_left` (a primitive seen alone in train, composed in test).
  Splits train and test."""
  HOMEPAGE = 'https://github.com/brendenlake/SCAN'
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=name) for name in _SCAN_FILES]

  def _examples(self):
    out = {}
    for split in ('train', 'test'):
      path = _SCAN_FILES[self.builder_config.name].format(split)
      raw = RawFile(f'scan/{path}.gz', _SCAN_URL, _SCAN[f'{path}.gz'],
                    member=f'SCAN-master/{path}')
      examples = []
      for number, line in enumerate(_lines(raw), start=1):
        command, sep, actions = line.partition(' OUT: ')
        if not sep or not command.startswith('IN: '):
          raise InputError(f'{path}:{number}: expected IN: ... OUT: ..., got '
                           f'{line[:60]!r}')
        examples.append({'source': command[4:].strip(),
                         'target': actions.strip()})
      out[split] = examples
    return out


_BABI_URL = 'http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz'


def parse_babi(lines: list[str], task: int, where: str) -> list[dict]:
  """bAbI's format -> one example per question.

  A line is `N sentence` or `N question?<TAB>answer<TAB>facts`; N restarts
  at 1 with every story. The source is the story's statements so far (not
  its earlier questions), one per line, then the question; the answer's
  comma-separated words (task 8's lists, task 19's paths) become words.
  """
  examples, story = [], []
  for number, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    index, _, text = line.partition(' ')
    if not index.isdigit():
      raise InputError(f'{where}:{number}: expected a sentence number, got '
                       f'{line[:60]!r}')
    if index == '1':
      story = []
    if '\t' in text:
      question, answer = text.split('\t')[:2]
      examples.append({'source': '\n'.join(story + [question.strip()]),
                       'target': ' '.join(answer.split(',')), 'task': task})
    else:
      story.append(text.strip())
  return examples


@register('babi')
class Babi(_Seq2SeqBuilder):
  """bAbI question answering v1.2 (Weston et al. 2015), the 20 tasks in
  English. Config `en` (default): 1,000 training and 1,000 test questions
  per task. Config `en-10k`: 10,000 training questions per task, the same
  test sets; it lacks task 3, whose training file no mirror holds. Every
  example carries its task number (1-20)."""
  HOMEPAGE = 'https://research.facebook.com/downloads/babi/'
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name='en', description='1k training questions'),
      tfds.core.BuilderConfig(name='en-10k', description='10k training questions'),
  ]

  def _features(self):
    return {**super()._features(), 'task': tfds.features.Scalar(np.int32)}

  def _examples(self):
    ten_k = self.builder_config.name == 'en-10k'
    out = {'train': [], 'test': []}
    for name in sorted(_BABI_1K, key=lambda n: int(n[2:n.index('_')])):
      task = int(name[2:name.index('_')])
      split = 'train' if name.endswith('_train.txt') else 'test'
      if ten_k and split == 'train':
        if f'{name}.gz' not in _BABI_10K:
          continue
        raw = RawFile(f'babi/tasks_1-20_v1-2/en-10k/{name}.gz', _BABI_URL,
                      _BABI_10K[f'{name}.gz'],
                      member=f'tasks_1-20_v1-2/en-10k/{name}')
      else:
        raw = RawFile(f'babi/tasks_1-20_v1-2/en/{name}', _BABI_URL,
                      _BABI_1K[name], member=f'tasks_1-20_v1-2/en/{name}')
      out[split].extend(parse_babi(_lines(raw), task, name))
    return out


_BABI_1K = {
    'qa10_indefinite-knowledge_test.txt':
        'fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7',
    'qa10_indefinite-knowledge_train.txt':
        '0b7691689447bab05476c5b48c44999b41e747c3978df69c18fdd87b60d6e8b3',
    'qa11_basic-coreference_test.txt':
        '46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f',
    'qa11_basic-coreference_train.txt':
        '9468de9a1f256f43dfda693a5d07182d21149a82b65f7c2451c64e9cff5eb138',
    'qa12_conjunction_test.txt':
        '6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1',
    'qa12_conjunction_train.txt':
        '45c2764bb2d3c8f699d35e9d9aa7958fcd96379c6e907116cdf74526c108bb25',
    'qa13_compound-coreference_test.txt':
        '76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990',
    'qa13_compound-coreference_train.txt':
        '533a391edbda743e4c99504de88b40cdded5b1d5ef454d1390f0863f748a4cc9',
    'qa14_time-reasoning_test.txt':
        'e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2',
    'qa14_time-reasoning_train.txt':
        'b7561cbc624205c9c2fdbb8c843cfa8ad90edd65e78bb223fc6dea8113662df8',
    'qa15_basic-deduction_test.txt':
        '32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94',
    'qa15_basic-deduction_train.txt':
        'e856ebfdcce4dd7d617c1d10f985e96a0850c0ca18e9a19a017cb710d135ed3d',
    'qa16_basic-induction_test.txt':
        '4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf',
    'qa16_basic-induction_train.txt':
        '20121005137e3d4b061a086eb177a456303d5742b764eb8da2d0e480b6af4d28',
    'qa17_positional-reasoning_test.txt':
        '9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac',
    'qa17_positional-reasoning_train.txt':
        '20083bf56ff74f0e7cf5e3e2f8c3905cdb8ef09293c3e8cf7a96ed8b45ae2277',
    'qa18_size-reasoning_test.txt':
        'd34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef',
    'qa18_size-reasoning_train.txt':
        '18b7dcf52c9a0e87e4e7dd3d65b7e5a630de039645f52a1294197af7481d739d',
    'qa19_path-finding_test.txt':
        '023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5',
    'qa19_path-finding_train.txt':
        'dcb788352a56effb7bea1449128f31cc9c342c8c327b6df2caeee0e379e6ad3a',
    'qa1_single-supporting-fact_test.txt':
        '55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b',
    'qa1_single-supporting-fact_train.txt':
        'c64ba9b1a49bbb111ffc4cd2ae4f129d25c012399dd7ade9679eea464b9afb05',
    'qa20_agents-motivations_test.txt':
        'bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729',
    'qa20_agents-motivations_train.txt':
        '29580ad55fb7b4b29ba014696056cc68f8f347dac3be88470fd692ad60150398',
    'qa2_two-supporting-facts_test.txt':
        'eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6',
    'qa2_two-supporting-facts_train.txt':
        'a4978af5bc0dc30191810e7c9949aaa6eae939ed0f6beb9fcb5f4330c2a27860',
    'qa3_three-supporting-facts_test.txt':
        '17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f',
    'qa3_three-supporting-facts_train.txt':
        'a6e78019f36a02a7ed71fe6aaded0b563ff09c8deec392931801fcd9c6af4d60',
    'qa4_two-arg-relations_test.txt':
        '07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e',
    'qa4_two-arg-relations_train.txt':
        'c9370502d85fa382f32d1fea2111e817f81ae9e3e79eb2924a1a5392a90417fa',
    'qa5_three-arg-relations_test.txt':
        'ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97',
    'qa5_three-arg-relations_train.txt':
        '086cd59c3ca9677bfac3d6a22ca5853c76a5c1fbae3159c7c4a6aef759a74ec0',
    'qa6_yes-no-questions_test.txt':
        'b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3',
    'qa6_yes-no-questions_train.txt':
        '5a133115ee35d475776df703ff605d145b11effbcdbf7e74861f9d5639246a5a',
    'qa7_counting_test.txt':
        'a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27',
    'qa7_counting_train.txt':
        'dca03bd91876951c49f1c971c83c9dd55404de60201b7b6435451cf7ddb4751c',
    'qa8_lists-sets_test.txt':
        '362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a',
    'qa8_lists-sets_train.txt':
        '058604df6f9440458317e8ae685d2b7b84261e1a80b4d6410a9140d16f81bf06',
    'qa9_simple-negation_test.txt':
        '63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f',
    'qa9_simple-negation_train.txt':
        '0c3b89921af0caea1c4059ee3f7b7f2a88869f924195a428da37820446b8c49f',
}
_BABI_10K = {
    'qa10_indefinite-knowledge_train.txt.gz':
        'c5c0788b0446095c07a0442784cad2b59c1d58e875ebe8ad852f5e3f628613f4',
    'qa11_basic-coreference_train.txt.gz':
        'edfcd97fecd4a5045af25e1790cf1408856ae362c39521b1b69cd32b88ec0ced',
    'qa12_conjunction_train.txt.gz':
        '39d58df3564916c66cebc98befb65d605c032181e51208730fd8837a77bc166a',
    'qa13_compound-coreference_train.txt.gz':
        'c530fdf122d26617a8a03ba5cdbacee87c22624ba7f50d1f07f9658c900e22d8',
    'qa14_time-reasoning_train.txt.gz':
        'c322e0814eef71f088af1aa1334e7ae4b1ee6ca18f2ee94c05e2189226964ed6',
    'qa15_basic-deduction_train.txt.gz':
        '0a86673f7fafa484f8ee394048f03de19405bdc40b58f21086969efad2862010',
    'qa16_basic-induction_train.txt.gz':
        '27fef347ce0b25dd148efea2b15f154926e0e9069d4ea6ab9cfca3add492ab35',
    'qa17_positional-reasoning_train.txt.gz':
        '8a383651e009db50d6c9effed5778b8646c28c55fadb1592b5f4d8d3a187bbce',
    'qa18_size-reasoning_train.txt.gz':
        '9e7c15107067d2070170ef12579a8bfe34dfc35a7ac9ebd13f2001dc1a7488f9',
    'qa19_path-finding_train.txt.gz':
        '6cfdc6f448e3cf0e3d8a390fa3add461935b033f89ede32aeef30812401ec91e',
    'qa1_single-supporting-fact_train.txt.gz':
        '749ea9f7c99070feb2d88c975a254417a0dcc8274add4435ae5ae24c7afc7e9d',
    'qa20_agents-motivations_train.txt.gz':
        '36f20f3baf6bad2297d5b9fd877e633550c36106fe78bc10ddfb7b1eede62573',
    'qa2_two-supporting-facts_train.txt.gz':
        'd4074c0c5d54f70ce2f538056ce2b6ef6a313da336da4245f1a24f1298e37ef3',
    'qa4_two-arg-relations_train.txt.gz':
        '5d11b821d35234988ab907866aa7ce718e6b6d751acf63bdef52262afb59f12c',
    'qa5_three-arg-relations_train.txt.gz':
        '2506910935b701bac64fc8b1d7ff12bd8d0f47ceefca183454282bec784c12a5',
    'qa6_yes-no-questions_train.txt.gz':
        '602f379184bf3cb59660d0f7769d9c94ccdc1fc4d82dfe90bd460d985b1ff0c5',
    'qa7_counting_train.txt.gz':
        '4a2508733bef9b38cfce4b3108a91b83cdee378de4a7370e4d32fea2dacd3b7d',
    'qa8_lists-sets_train.txt.gz':
        '9518da2d3aa5d98bec33335e0d5ba3a22c2bd1929ee679085d37eb50a7652e4a',
    'qa9_simple-negation_train.txt.gz':
        '5f8949f6ef7d64516fc4dd5732b12b5932d057b1a614e8ac94e795fb020d4ff0',
}
_SCAN = {
    'add_prim_split/tasks_test_addprim_jump.txt.gz':
        '8147ae2651422c701162e174d9d66158daa57858a26b30317ac61797118ac7a5',
    'add_prim_split/tasks_test_addprim_turn_left.txt.gz':
        '15a82c2d25ac7c3c1fff7e18051fb085974ef3617de895c520d02144396a10e2',
    'add_prim_split/tasks_train_addprim_jump.txt.gz':
        'e3c78485692e028eed4205e1b8b3fd0e785ef2c12d45b5b89204dadf5b239e23',
    'add_prim_split/tasks_train_addprim_turn_left.txt.gz':
        '1b3fed86055dd7689d217f1b90cc8960aeb1cf200f4f209dc47935761b05304c',
    'length_split/tasks_test_length.txt.gz':
        '0760752ed34a75116ae11dcc1ee17526b7500060da1366540730fa24894d7db3',
    'length_split/tasks_train_length.txt.gz':
        'b034212dc7cf87ce62f3a067dd6ad49c4d5cd18d51d615d13825516bcb1ebbc2',
    'simple_split/tasks_test_simple.txt.gz':
        '1fe1c8f5a19d0dc40e41bab94278f45f66f3dc415a978bd29855a23440610fc6',
    'simple_split/tasks_train_simple.txt.gz':
        '941bb8a088c5f53ceff12fde902dc008933cf0c4203cc672c47b5f79d73262dd',
}
_MULTI30K = {
    'test_2016_flickr.de.gz':
        '9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8',
    'test_2016_flickr.en.gz':
        '611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9',
    'train.de.gz':
        '726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6',
    'train.en.gz':
        'd79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f',
    'val.de.gz':
        'f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a',
    'val.en.gz':
        '14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28',
}
